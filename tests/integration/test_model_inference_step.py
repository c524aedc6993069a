"""model_inference against a real OpenAI-compatible (and Ollama) endpoint the test serves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rustchain.domain.policy.model import Policy
from rustchain.steps.support.llm_client import PROVIDER_SETTING, URL_SETTING
from rustchain.steps.support.runtime import PolicyRefusedError, StepRunError
from tests.integration.data_step_helpers import context_for, run_step
from tests.integration.http_fixtures import LocalServer, json_answer, serve


@pytest.fixture
def model() -> Iterator[LocalServer]:
    """Answers with the prompt reversed, its word count as usage, and `length` past 3 tokens."""

    def answer(method: str, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
        prompt = body["messages"][-1]["content"]
        reason = "length" if body.get("max_tokens", 0) < 3 else "stop"
        if path == "/v1/chat/completions":
            return json_answer(
                {
                    "choices": [{"message": {"content": prompt[::-1]}, "finish_reason": reason}],
                    "usage": {"total_tokens": len(prompt.split()) + 7},
                }
            )
        if path == "/api/chat":
            return json_answer(
                {
                    "message": {"content": prompt.upper()},
                    "done_reason": "stop",
                    "prompt_eval_count": 4,
                    "eval_count": 2,
                }
            )
        return json_answer({"error": "no such endpoint"}, 404)

    yield from serve(answer)


def test_the_answer_comes_with_tokens_used_and_finish_reason(
    model: LocalServer, tmp_path: Path
) -> None:
    context = context_for(tmp_path, None, {URL_SETTING: f"{model.url}/v1"})

    out = run_step("model_inference", context, prompt="one two three", model="m1")

    assert out == {
        "prompt": "one two three",
        "model": "m1",
        "response": "eerht owt eno",
        "max_tokens": 100,
        "tokens_used": 10,
        "finish_reason": "Stop",
    }
    assert model.requests[0][2]["max_tokens"] == 100


def test_a_cut_answer_says_length(model: LocalServer, tmp_path: Path) -> None:
    context = context_for(tmp_path, None, {URL_SETTING: f"{model.url}/v1"})

    out = run_step("model_inference", context, prompt="hi", max_tokens=2)

    assert out["finish_reason"] == "Length"


def test_ollama_counts_prompt_and_answer_tokens(model: LocalServer, tmp_path: Path) -> None:
    settings = {URL_SETTING: model.url, PROVIDER_SETTING: "ollama"}

    out = run_step("model_inference", context_for(tmp_path, None, settings), prompt="hi")

    assert (out["response"], out["tokens_used"], out["finish_reason"]) == ("HI", 6, "Stop")


def test_a_model_the_policy_does_not_allow_is_refused_at_run_time(
    model: LocalServer, tmp_path: Path
) -> None:
    policy = Policy.model_validate({"llm": {"allowed_models": ["llama3"]}})
    context = context_for(tmp_path, policy, {URL_SETTING: f"{model.url}/v1"})

    with pytest.raises(PolicyRefusedError, match=r"llm.model"):
        run_step("model_inference", context, prompt="hi", model="gpt-4")
    with pytest.raises(PolicyRefusedError, match=r"llm.tokens"):
        run_step("model_inference", context, prompt="hi", model="llama3", max_tokens=10**6)
    assert model.requests == []


def test_an_unreachable_endpoint_is_a_step_error(tmp_path: Path) -> None:
    context = context_for(tmp_path, None, {URL_SETTING: "http://127.0.0.1:9/v1"})

    with pytest.raises(StepRunError, match="unreachable"):
        run_step("model_inference", context, prompt="hi")
