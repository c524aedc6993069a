"""A finished mission's trajectory from its recorded facts (the trainer's input)."""

from __future__ import annotations

from typing import Any

from rustchain.domain.events.envelope import EventEnvelope
from rustchain.domain.runs import run_decisions
from rustchain.domain.runs.mission_run import MissionRun
from rustchain.domain.runs.run_events import StepStarted, run_fact
from rustchain.domain.runs.trajectory import build_trajectory
from tests.paths import DATA
from tests.replay import recorded_history

HISTORY = DATA / "histories" / "code_analysis_with_retry.jsonl"
V1_HISTORY = DATA / "histories" / "v1" / "code_analysis_with_retry.jsonl"


def _last_recorded_inputs(events: list[EventEnvelope]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for event in events:
        fact = run_fact(event)
        if isinstance(fact, StepStarted):
            found[fact.step_id] = fact.inputs
    return found


def test_each_step_shows_the_inputs_its_last_attempt_was_given() -> None:
    events = recorded_history(HISTORY)
    trajectory = build_trajectory(events)

    recorded = _last_recorded_inputs(events)
    assert {s.step_id: s.inputs for s in trajectory.steps} == recorded
    retried = next(s for s in trajectory.steps if s.step_id == "count_lines")
    assert retried.attempts == 2 and trajectory.outcome == "succeeded"


def test_the_recorded_inputs_win_over_rendering_them_again() -> None:
    def tamper(records: list[dict[str, Any]]) -> None:
        started = next(
            r
            for r in records
            if r["type"] == "StepStarted" and r["payload"]["step_id"] == "find_todos"
        )
        started["payload"]["inputs"] = {
            "command": "grep",
            "args": ["-rn", "recorded-by-the-runner"],
        }

    trajectory = build_trajectory(recorded_history(HISTORY, tamper))

    step = next(s for s in trajectory.steps if s.step_id == "find_todos")
    assert step.inputs == {"command": "grep", "args": ["-rn", "recorded-by-the-runner"]}


def test_version_1_facts_have_their_inputs_rendered_again() -> None:
    events = recorded_history(V1_HISTORY)
    run = MissionRun.fold(run_fact(e) for e in events)

    trajectory = build_trajectory(events)

    for step in trajectory.steps:
        assert step.inputs == run_decisions.step_parameters(run, step.step_id)
