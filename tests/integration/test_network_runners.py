"""http, llm, chain, agent, tool and validate_schema runners against real local HTTP servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rustchain.domain.policy.model import NetworkPolicy, Policy
from rustchain.steps import default_registry
from rustchain.steps.support.llm_client import PROVIDER_SETTING, URL_SETTING
from rustchain.steps.support.runtime import StepContext, StepRunError
from tests.integration.http_fixtures import LocalServer, json_answer, serve

REGISTRY = default_registry(include_plugins=False)


def loopback_policy(*ports: int) -> Policy:
    """A policy that lets missions reach 127.0.0.1 on these ports, over plain http."""
    network = NetworkPolicy(
        schemes=["http"], allowed_hosts=["127.0.0.1"], denied_hosts=[], ports=list(ports)
    )
    return Policy(network=network)


def run_step(
    step_type: str,
    workspace: Path,
    settings: dict[str, str] | None = None,
    policy: Policy | None = None,
    **params: Any,
) -> Any:
    """Validate parameters as the loader does and run one attempt."""
    definition = REGISTRY.types[step_type]
    context = StepContext("acme", "m1", "s1", workspace, 10, settings or {}, policy=policy)
    return asyncio.run(definition.run(definition.parameters.model_validate(params), context))  # type: ignore[attr-defined]


def port_of(server: LocalServer) -> int:
    """The port a test server listens on."""
    return int(server.url.rsplit(":", 1)[1])


@pytest.fixture
def api() -> Iterator[LocalServer]:
    def answer(method: str, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
        if path == "/json":
            return json_answer({"hello": "world", "method": method, "sent": body})
        if path == "/big":
            return 200, {"Content-Type": "text/plain"}, b"x" * 5000
        return 404, {"Content-Type": "text/plain"}, b"nothing here"

    yield from serve(answer)


def test_http_returns_status_headers_and_parsed_json(api: LocalServer, tmp_path: Path) -> None:
    policy = loopback_policy(port_of(api))
    output = run_step(
        "http", tmp_path, policy=policy, url=f"{api.url}/json", method="post", body={"a": 1}
    )

    assert output["status"] == 200
    assert output["body"] == {"hello": "world", "method": "POST", "sent": {"a": 1}}
    assert api.requests == [("POST", "/json", {"a": 1})]


def test_http_error_status_fails_the_step(api: LocalServer, tmp_path: Path) -> None:
    policy = loopback_policy(port_of(api))
    with pytest.raises(StepRunError, match="answered 404"):
        run_step("http", tmp_path, policy=policy, url=f"{api.url}/missing")
    missing = run_step(
        "http", tmp_path, policy=policy, url=f"{api.url}/missing", expected_status=[404]
    )
    assert missing["status"] == 404


def test_http_response_size_is_capped(api: LocalServer, tmp_path: Path) -> None:
    with pytest.raises(StepRunError, match="larger than max_response_bytes"):
        run_step(
            "http",
            tmp_path,
            policy=loopback_policy(port_of(api)),
            url=f"{api.url}/big",
            max_response_bytes=1000,
        )


def test_http_asking_more_than_the_policy_bound_is_refused(
    api: LocalServer, tmp_path: Path
) -> None:
    policy = loopback_policy(port_of(api))
    with pytest.raises(StepRunError, match=r"\(network\.max_response_bytes\)"):
        run_step("http", tmp_path, policy=policy, url=f"{api.url}/big", max_response_bytes=10**7)


def test_http_unreachable_host_says_so(tmp_path: Path) -> None:
    with pytest.raises(StepRunError, match=r"GET http://127\.0\.0\.1:9/ failed"):
        run_step(
            "http",
            tmp_path,
            policy=loopback_policy(9),
            url="http://127.0.0.1:9/",
            timeout_seconds=2,
        )


@pytest.fixture
def model() -> Iterator[LocalServer]:
    """An OpenAI-compatible and Ollama-compatible chat endpoint that echoes the last message,
    or plays an agent script when the system prompt asks for JSON."""
    script = [
        json.dumps({"tool": "create_file", "parameters": {"path": "notes.txt", "content": "hi"}}),
        json.dumps({"final": "wrote notes.txt"}),
    ]

    def answer(method: str, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
        messages = body["messages"]
        is_agent = messages[0]["role"] == "system" and "JSON object" in messages[0]["content"]
        text = (
            script[sum(m["role"] == "assistant" for m in messages)]
            if is_agent
            else (f"echo[{body['model']}]: {messages[-1]['content']}")
        )
        if path == "/v1/chat/completions":
            return json_answer({"choices": [{"message": {"role": "assistant", "content": text}}]})
        if path == "/api/chat":
            return json_answer({"message": {"role": "assistant", "content": text}})
        return json_answer({"error": "no such endpoint"}, 404)

    yield from serve(answer)


def test_llm_asks_an_openai_compatible_endpoint(model: LocalServer, tmp_path: Path) -> None:
    settings = {URL_SETTING: f"{model.url}/v1"}

    answer = run_step("llm", tmp_path, settings, prompt="What is 2+2?", model="m1", max_tokens=5)

    assert answer == "echo[m1]: What is 2+2?"
    assert model.requests[0][2]["max_tokens"] == 5


def test_llm_speaks_ollama_when_told(model: LocalServer, tmp_path: Path) -> None:
    settings = {URL_SETTING: model.url, PROVIDER_SETTING: "ollama"}

    assert run_step("llm", tmp_path, settings, prompt="hi", model="m2") == "echo[m2]: hi"
    assert model.requests[0][1] == "/api/chat"


def test_llm_endpoint_down_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(
        StepRunError, match=r"LLM endpoint http://127\.0\.0\.1:9/v1/chat/completions unreachable"
    ):
        run_step("llm", tmp_path, {URL_SETTING: "http://127.0.0.1:9/v1"}, prompt="hi")


def test_sequential_chain_feeds_each_answer_to_the_next_prompt(
    model: LocalServer, tmp_path: Path
) -> None:
    settings = {URL_SETTING: f"{model.url}/v1"}

    answer = run_step("chain", tmp_path, settings, prompts=["first", "second"], model="m")

    assert answer == "echo[m]: second\n\nPrevious answer:\necho[m]: first"


def test_agent_calls_tools_until_it_answers(model: LocalServer, tmp_path: Path) -> None:
    settings = {URL_SETTING: f"{model.url}/v1"}

    output = run_step("agent", tmp_path, settings, objective="write notes", tools=["create_file"])

    assert output["answer"] == "wrote notes.txt"
    assert output["turns"] == 2
    assert (tmp_path / "notes.txt").read_text() == "hi"


def test_tool_step_runs_a_built_in_tool_and_reports_unknown_ones(tmp_path: Path) -> None:
    run_step("tool", tmp_path, tool="create_file", parameters={"path": "t.txt", "content": "x"})

    assert (tmp_path / "t.txt").read_text() == "x"
    with pytest.raises(StepRunError, match="unknown tool 'teleport'"):
        run_step("tool", tmp_path, tool="teleport")
    with pytest.raises(StepRunError, match="tool 'create_file': path"):
        run_step("tool", tmp_path, tool="create_file", parameters={"content": "no path"})


def test_validate_schema_accepts_and_refuses(tmp_path: Path) -> None:
    schema = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}

    assert run_step("validate_schema", tmp_path, schema=schema, data={"name": "x"}) == {
        "valid": True
    }
    with pytest.raises(StepRunError, match="name: 3 is not of type 'string'"):
        run_step("validate_schema", tmp_path, schema=schema, content='{"name": 3}')
