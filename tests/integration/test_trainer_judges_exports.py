"""`rustchain trainer optimize` end to end with a RULER judge: judgements are chained events
that replay to the same scores, a failing judge falls back and says so, and each export has its
format's documented shape."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from rustchain.cli.app import app
from rustchain.domain.events.chain import verify_chain
from rustchain.domain.training.rule_judge import judge_by_rules
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.steps.support.llm_client import MODEL_SETTING, URL_SETTING
from rustchain.trainer.suite_files import load_suite
from rustchain.trainer.trainer_events import TRAJECTORY_JUDGED
from rustchain.trainer.trajectory_store import SqliteTrajectoryStore
from tests.integration.graded_model import GradedModel, Grading, references_of, serve_graded
from tests.paths import REPO

TRIAGE = REPO / "missions" / "suites" / "ticket-triage"
BETTER = "exactly one word"


@pytest.fixture
def suite_dir(tmp_path: Path) -> Path:
    """The triage suite cut to fourteen scenarios and two candidates, with an LLM judge."""
    folder = tmp_path / "suite"
    folder.mkdir()
    shutil.copy(TRIAGE / "mission.yaml", folder / "mission.yaml")
    suite = load_suite(TRIAGE).suite
    scenarios = [s.model_dump(exclude_none=True) for s in suite.scenarios[:14]]
    document = {
        "name": "triage-small",
        "mission": "mission.yaml",
        "holdout": 0.4,
        "judge": {"model": "judge-model", "llm_share": 0.5},
        "search": {"steps": ["classify"], "instructions": [suite.search.instructions[1]]},
        "optimiser": {"candidates": 2, "runs_per_scenario": 2},
        "scenarios": scenarios,
    }
    (folder / "suite.yaml").write_text(json.dumps(document))
    return folder


@pytest.fixture
def graded(suite_dir: Path) -> Iterator[GradedModel]:
    grading = Grading(default_quality=0.3, instruction_bonus={BETTER: 0.7})
    yield from serve_graded(GradedModel(references_of(load_suite(suite_dir).suite), grading))


@pytest.fixture
def home(tmp_path: Path, graded: GradedModel, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("RUSTCHAIN_HOME", str(home))
    monkeypatch.setenv(URL_SETTING, graded.url)
    monkeypatch.setenv(MODEL_SETTING, "base-model")
    return home


def optimize(suite_dir: Path) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["trainer", "optimize", str(suite_dir), "--tenant", "acme", "--json"]
    )
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def judged_missions(home: Path) -> dict[str, list[Any]]:
    store = open_event_store(EventStoreSettings("trainer", home))
    try:
        events = [n.event for n in store.notifications(0, 100_000)]
    finally:
        store.close()
    found: dict[str, list[Any]] = {}
    for event in events:
        if event.type == TRAJECTORY_JUDGED:
            found.setdefault(event.mission_id, []).append(event)
    assert verify_chain(events) is None
    return found


def test_optimize_json_reports_both_held_out_scores(suite_dir: Path, home: Path) -> None:
    summary = optimize(suite_dir)

    assert set(summary) >= {"baseline", "candidate", "promoted", "policy_version"}
    assert set(summary["baseline"]) == {"score", "passed", "total"}
    assert summary["promoted"] is True
    assert summary["candidate"]["passed"] > summary["baseline"]["passed"]


def test_judgements_are_chained_and_replay_to_the_same_score(suite_dir: Path, home: Path) -> None:
    optimize(suite_dir)
    suite = load_suite(suite_dir).suite
    scenarios = {s.id: s for s in suite.scenarios}
    trajectories = SqliteTrajectoryStore(home / "trainer.sqlite3")

    judged = judged_missions(home)

    assert judged
    for mission_id, events in judged.items():
        judges = {e.payload["judge"] for e in events}
        assert judges == {"rules", "ruler:judge-model"}
        rule = next(e for e in events if e.payload["judge"] == "rules")
        trajectory = trajectories.get("acme", mission_id)
        assert trajectory is not None
        again = judge_by_rules(trajectory, scenarios[rule.payload["scenario"]], suite.judge)
        assert (again.score, again.rubric_hash) == (
            rule.payload["score"],
            rule.payload["rubric_hash"],
        )
    trajectories.close()


def test_a_failing_judge_falls_back_to_the_rule_score_and_says_so(
    suite_dir: Path, home: Path, graded: GradedModel
) -> None:
    graded.grading.judge_broken = True

    optimize(suite_dir)

    for events in judged_missions(home).values():
        rule = next(e for e in events if e.payload["judge"] == "rules")
        fallback = next(e for e in events if e.payload["judge"] == "ruler-fallback")
        assert fallback.payload["score"] == rule.payload["score"]
        assert "LLM judge failed" in fallback.payload["explanation"]


TEXT_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "additionalProperties": False,
    "properties": {
        "role": {"enum": ["system", "user", "assistant"]},
        "content": {"type": "string"},
    },
}
# OpenAI chat format's tool calling: the assistant's calls (arguments as a JSON string), then
# one `tool` message per call with its result.
TOOL_CALL_MESSAGE = {
    "type": "object",
    "required": ["role", "tool_calls"],
    "additionalProperties": False,
    "properties": {
        "role": {"const": "assistant"},
        "tool_calls": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "type", "function"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string"},
                    "type": {"const": "function"},
                    "function": {
                        "type": "object",
                        "required": ["name", "arguments"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "arguments": {"type": "string", "contentMediaType": "application/json"},
                        },
                    },
                },
            },
        },
    },
}
TOOL_MESSAGE = {
    "type": "object",
    "required": ["role", "tool_call_id", "content"],
    "additionalProperties": False,
    "properties": {
        "role": {"const": "tool"},
        "tool_call_id": {"type": "string"},
        "content": {"type": "string"},
    },
}
MESSAGE = {"oneOf": [TEXT_MESSAGE, TOOL_CALL_MESSAGE, TOOL_MESSAGE]}
MESSAGES = {"type": "array", "items": MESSAGE, "minItems": 1}
ASSISTANT_TEXT = {
    **TEXT_MESSAGE,
    "properties": {"role": {"const": "assistant"}, "content": {"type": "string"}},
}
ASSISTANT = {"type": "array", "items": ASSISTANT_TEXT}
TOOLS = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["type", "function"],
        "additionalProperties": False,
        "properties": {
            "type": {"const": "function"},
            "function": {
                "type": "object",
                "required": ["name", "parameters"],
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "parameters": {"type": "object", "required": ["type"]},
                },
            },
        },
    },
}
# Each format's documented shape: OpenAI fine-tuning (chat with tools, preference), TRL's
# conversational preference dataset (with tools), and OpenPipe ART's trajectory groups.
SHAPES: dict[str, dict[str, Any]] = {
    "openai-sft": {
        "type": "object",
        "required": ["messages"],
        "additionalProperties": False,
        "properties": {"messages": MESSAGES, "tools": TOOLS},
    },
    "openai-dpo": {
        "type": "object",
        "required": ["input", "preferred_output", "non_preferred_output"],
        "additionalProperties": False,
        "properties": {
            "input": {
                "type": "object",
                "required": ["messages"],
                "properties": {"messages": MESSAGES},
            },
            "preferred_output": {**ASSISTANT, "minItems": 1, "maxItems": 1},
            "non_preferred_output": {**ASSISTANT, "minItems": 1, "maxItems": 1},
        },
    },
    "trl": {
        "type": "object",
        "required": ["prompt", "chosen", "rejected"],
        "additionalProperties": False,
        "properties": {
            "prompt": MESSAGES,
            "chosen": MESSAGES,
            "rejected": MESSAGES,
            "tools": TOOLS,
        },
    },
    "art": {
        "type": "object",
        "required": ["trajectories"],
        "properties": {
            "trajectories": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["messages_and_choices", "reward"],
                    "additionalProperties": False,
                    "properties": {
                        "messages_and_choices": MESSAGES,
                        "tools": TOOLS,
                        "reward": {"type": "number"},
                        "metrics": {"type": "object"},
                        "metadata": {"type": "object"},
                    },
                },
            }
        },
    },
}
AGENT_STEPS = """
  - id: look
    name: Look the ticket over
    step_type: tool
    parameters:
      tool: parse_json
      parameters: {content: '{"seen": true}'}
  - id: review
    name: Review the category with a tool
    step_type: agent
    depends_on: [look]
    parameters:
      name: reviewer
      objective: "Name the category of this ticket: {ticket}"
      tools: [parse_json]
      max_iterations: 3
"""


def export(fmt: str, out: Path) -> list[dict[str, Any]]:
    result = CliRunner().invoke(
        app, ["trainer", "export", "--tenant", "acme", "--format", fmt, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.parametrize("fmt", sorted(SHAPES))
def test_each_export_has_its_documented_shape(
    suite_dir: Path, home: Path, tmp_path: Path, fmt: str
) -> None:
    optimize(suite_dir)

    records = export(fmt, tmp_path / f"{fmt}.jsonl")

    assert records
    for record in records:
        jsonschema.validate(record, SHAPES[fmt])
    if fmt == "openai-dpo":
        first = records[0]
        assert (
            first["preferred_output"][0]["content"] != first["non_preferred_output"][0]["content"]
        )


@pytest.mark.parametrize("fmt", sorted(SHAPES))
def test_exports_carry_the_agents_tool_calls_in_each_formats_shape(
    suite_dir: Path, home: Path, tmp_path: Path, fmt: str
) -> None:
    """A mission with a tool step and an agent that calls a tool: SFT and ART hold the calls as
    assistant `tool_calls` with `tool` results and the tools' definitions."""
    mission = suite_dir / "mission.yaml"
    text = mission.read_text()
    mission.write_text(text.replace("\noutputs:", AGENT_STEPS + "\noutputs:", 1))
    optimize(suite_dir)

    records = export(fmt, tmp_path / f"{fmt}.jsonl")

    assert records
    for record in records:
        jsonschema.validate(record, SHAPES[fmt])
    if fmt == "openai-sft":
        agent = [r for r in records if "tools" in r]
        assert agent and len(agent) < len(records)
        messages = agent[0]["messages"]
        assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant"]
        (call,) = messages[2]["tool_calls"]
        assert call["function"]["name"] == "parse_json"
        assert json.loads(call["function"]["arguments"]) == {"content": '{"checked": true}'}
        assert messages[3]["tool_call_id"] == call["id"]
        assert json.loads(messages[3]["content"]) == {"checked": True}
        (tool,) = agent[0]["tools"]
        assert tool["function"]["name"] == "parse_json"
        assert "content" in tool["function"]["parameters"]["properties"]
    if fmt == "art":
        first = records[0]["trajectories"][0]
        calls = [m for m in first["messages_and_choices"] if "tool_calls" in m]
        results = [m for m in first["messages_and_choices"] if m["role"] == "tool"]
        # The mission's own tool step, then the agent's call.
        assert [c["tool_calls"][0]["id"] for c in calls] == ["call_look", "call_review_1"]
        assert [r["tool_call_id"] for r in results] == ["call_look", "call_review_1"]
        assert [t["function"]["name"] for t in first["tools"]] == ["parse_json"]


def test_an_export_for_another_tenant_is_empty(suite_dir: Path, home: Path, tmp_path: Path) -> None:
    optimize(suite_dir)
    out = tmp_path / "other.jsonl"

    result = CliRunner().invoke(
        app, ["trainer", "export", "--tenant", "globex", "--format", "art", "--out", str(out)]
    )

    assert result.exit_code == 0 and out.read_text() == ""
