"""A finished mission's trajectory from its recorded facts (the trainer's input)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from rustchain.domain import run_decisions
from rustchain.domain.events import EventDraft, EventEnvelope, seal_all
from rustchain.domain.mission_run import MissionRun
from rustchain.domain.run_events import StepStarted, run_fact
from rustchain.domain.trajectory import build_trajectory
from tests.paths import DATA
from tests.unit.run_simulation import START

HISTORY = DATA / "histories" / "code_analysis_with_retry.jsonl"
V1_HISTORY = DATA / "histories" / "v1" / "code_analysis_with_retry.jsonl"


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _envelopes(records: list[dict[str, Any]]) -> list[EventEnvelope]:
    drafts = [
        EventDraft(
            id=str(uuid.UUID(int=n)),
            tenant="t",
            mission_id="m",
            service="executor",
            aggregate_id="m",
            aggregate_version=n,
            type=record["type"],
            version=record.get("version", 1),
            occurred_at=START,
            payload=record["payload"],
        )
        for n, record in enumerate(records, start=1)
    ]
    return seal_all(drafts, {})


def _last_recorded_inputs(events: list[EventEnvelope]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for event in events:
        fact = run_fact(event)
        if isinstance(fact, StepStarted):
            found[fact.step_id] = fact.inputs
    return found


def test_each_step_shows_the_inputs_its_last_attempt_was_given() -> None:
    events = _envelopes(_records(HISTORY))
    trajectory = build_trajectory(events)

    recorded = _last_recorded_inputs(events)
    assert {s.step_id: s.inputs for s in trajectory.steps} == recorded
    retried = next(s for s in trajectory.steps if s.step_id == "count_lines")
    assert retried.attempts == 2 and trajectory.outcome == "succeeded"


def test_the_recorded_inputs_win_over_rendering_them_again() -> None:
    records = _records(HISTORY)
    started = next(
        r for r in records if r["type"] == "StepStarted" and r["payload"]["step_id"] == "find_todos"
    )
    started["payload"]["inputs"] = {"command": "grep", "args": ["-rn", "recorded-by-the-runner"]}

    trajectory = build_trajectory(_envelopes(records))

    step = next(s for s in trajectory.steps if s.step_id == "find_todos")
    assert step.inputs == {"command": "grep", "args": ["-rn", "recorded-by-the-runner"]}


def test_version_1_facts_have_their_inputs_rendered_again() -> None:
    events = _envelopes(_records(V1_HISTORY))
    run = MissionRun.fold(run_fact(e) for e in events)

    trajectory = build_trajectory(events)

    for step in trajectory.steps:
        assert step.inputs == run_decisions.step_parameters(run, step.step_id)
