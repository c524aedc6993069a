"""A real OpenAI-compatible chat server whose answers are as good as what it is sent.

For the trainer's tests and bench: the answer to a prompt is the scenario's reference answer or
a useless one, decided by a hash of the prompt against a quality that depends on the model, on
phrases in the system instruction and on the number of demonstrations. The same prompt at a
higher quality is right wherever it was right at a lower one, so a planted improvement shows as
a gain and settings of equal quality give exactly the same answers (no improvement to find).
It also plays a RULER judge: trajectories that contain the reference answer score high.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from rustchain.domain.training.suite import Suite
from tests.integration.http_fixtures import LocalServer, json_answer, serve

WRONG_ANSWER = "I am not sure."
JUDGE_MARKER = "You are a careful judge"
# The agent step's instructions ask for one JSON decision per turn.
AGENT_MARKER = "Answer with exactly one JSON object"


@dataclass
class Grading:
    """How good each answer is: model quality, instruction bonuses, a bonus per demonstration."""

    models: Mapping[str, float] = field(default_factory=dict)
    default_quality: float = 0.4
    instruction_bonus: Mapping[str, float] = field(default_factory=dict)
    demonstration_bonus: float = 0.0
    max_demonstrations: int = 3
    seed: int = 0
    judge_broken: bool = False

    def quality(self, body: Mapping[str, Any]) -> float:
        """The chance, over prompts, that an answer to this request is right."""
        messages = body["messages"]
        system = " ".join(m["content"] for m in messages if m["role"] == "system")
        quality = self.models.get(str(body.get("model")), self.default_quality)
        quality += sum(
            bonus for phrase, bonus in self.instruction_bonus.items() if phrase in system
        )
        shown = sum(m["role"] == "assistant" for m in messages)
        quality += self.demonstration_bonus * min(shown, self.max_demonstrations)
        return min(1.0, quality)

    def luck(self, prompt: str) -> float:
        """The prompt's fixed draw in [0, 1): it is answered right when below the quality."""
        digest = hashlib.sha256(f"{self.seed}\x00{prompt}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64


def references_of(suite: Suite) -> dict[str, str]:
    """Each scenario's variable text (what its prompt contains) mapped to its reference."""
    found: dict[str, str] = {}
    for scenario in suite.scenarios:
        texts = [v for v in scenario.variables.values() if isinstance(v, str)]
        if texts and scenario.reference is not None:
            found[texts[0]] = scenario.reference
    return found


def _judge(prompt: str, broken: bool) -> str:
    if broken:
        return "They all look fine to me."
    reference = re.search(r"A reference answer: (.*)", prompt)
    wanted = reference.group(1).strip() if reference else ""
    scores = [
        {
            "trajectory_id": number,
            "explanation": "reaches the goal" if wanted and wanted in block else "misses it",
            "score": 0.9 if wanted and wanted in block else 0.1,
        }
        for number, block in re.findall(r'<trajectory id="(\d+)">(.*?)</trajectory>', prompt, re.S)
    ]
    return json.dumps({"scores": scores})


@dataclass
class GradedModel:
    """The server's state: references by prompt text, the grading, and what it was asked."""

    references: dict[str, str]
    grading: Grading
    server: LocalServer | None = None
    # Requests answered with a server error before the model answers (an unreliable endpoint).
    failures: int = 0

    def answer_to(self, body: Mapping[str, Any]) -> str:
        """What the model says to one chat request."""
        messages = body["messages"]
        prompt = str(messages[-1]["content"])
        if messages[0]["role"] == "system" and JUDGE_MARKER in messages[0]["content"]:
            return _judge(prompt, self.grading.judge_broken)
        if messages[0]["role"] == "system" and AGENT_MARKER in messages[0]["content"]:
            return self._agent_turn(body)
        reference = next((r for key, r in self.references.items() if key in prompt), None)
        if reference is None or self.grading.luck(prompt) >= self.grading.quality(body):
            return WRONG_ANSWER
        return reference

    def _agent_turn(self, body: Mapping[str, Any]) -> str:
        """An agent's decision: first a `parse_json` tool call, then the graded answer to the
        objective (the first user message) as its final answer."""
        messages = body["messages"]
        if not str(messages[-1]["content"]).startswith("Tool result:"):
            call = {"tool": "parse_json", "parameters": {"content": '{"checked": true}'}}
            return json.dumps(call)
        objective = str(messages[1]["content"])
        reference = next((r for key, r in self.references.items() if key in objective), None)
        graded = {**body, "messages": messages[:2]}
        good = reference is not None and self.grading.luck(objective) < self.grading.quality(graded)
        return json.dumps({"final": reference if good else WRONG_ANSWER})

    @property
    def url(self) -> str:
        """The OpenAI-compatible base URL (`RUSTCHAIN_LLM_URL`)."""
        assert self.server is not None
        return f"{self.server.url}/v1"

    def bodies(self) -> list[Any]:
        """Every chat request body received, in order."""
        assert self.server is not None
        return [body for _, path, body in self.server.requests if path.endswith("/completions")]


def serve_graded(model: GradedModel) -> Iterator[GradedModel]:
    """Run the server for a fixture's duration."""

    def handle(method: str, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
        if method != "POST" or path != "/v1/chat/completions" or not isinstance(body, dict):
            return json_answer({"error": {"message": "no such endpoint"}}, 404)
        if model.failures > 0:
            model.failures -= 1
            return json_answer({"error": {"message": "overloaded, try again"}}, 503)
        text = model.answer_to(body)
        return json_answer(
            {
                "id": "chatcmpl-graded",
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
            }
        )

    for server in serve(handle):
        model.server = server
        yield model
