"""Recorded run histories replay through the real executor application identically.

Each recorded history is played again by the ExecutorApplication the bootstrap builds, its runners
answering with the outcomes the history recorded (as Temporal replays histories through the real
workflow code). A change to the run decisions or to how the executor records them (the order of
facts in an append, recover, the inbox) that would make a recorded history play out differently
fails here. To re-record after an intended change:
RUSTCHAIN_RECORD_HISTORIES=1 pytest tests/unit/test_run_replay.py

Histories recorded by earlier versions of the facts stay under histories/v<N>/, never rewritten:
they are upcast on read and must still be re-decided identically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rustchain.domain.runs.mission_run import FINISHED, MissionRun
from rustchain.domain.runs.run_events import (
    MissionStarted,
    RunEvent,
    StepInterrupted,
    StepStarted,
    StepSucceeded,
    run_event_payload,
    run_event_version,
    run_fact,
)
from tests.paths import DATA
from tests.replay import (
    Replay,
    StepFailedError,
    max_running,
    recorded_history,
    recorded_outcomes,
)
from tests.unit.compile_helpers import plan_of

HISTORIES = DATA / "histories"
V1_HISTORIES = HISTORIES / "v1"


def _code_analysis_outcomes(step_id: str, attempt: int) -> Any:
    if step_id == "count_lines" and attempt == 1:
        raise StepFailedError("wc: interrupted")
    return {"list_sources": ["a.py", "b.py"], "count_lines": "120 total"}.get(step_id, "ok")


def _diamond_failure(step_id: str, attempt: int) -> Any:
    if step_id == "left":
        raise StepFailedError("boom")
    return step_id


SCENARIOS: dict[str, tuple[Callable[[], str], Callable[[str, int], Any], dict[str, Any]]] = {
    "code_analysis_with_retry": (
        (HISTORIES / "code_analysis.yaml").read_text,
        _code_analysis_outcomes,
        {"source_dir": "services"},
    ),
    "diamond_with_failure": (
        lambda: (
            'version: "1.0"\nname: diamond\nconfig: {fail_fast: false}\nsteps:\n'
            "  - {id: fetch, name: F, step_type: noop}\n"
            "  - {id: left, name: L, step_type: noop, depends_on: [fetch]}\n"
            "  - {id: right, name: R, step_type: noop, depends_on: [fetch]}\n"
            "  - {id: join, name: J, step_type: noop, depends_on: [left, right]}\n"
        ),
        _diamond_failure,
        {},
    ),
    "crash_and_resume": (
        lambda: (
            'version: "1.0"\nname: crash\nconfig: {fail_fast: false}\nsteps:\n'
            "  - {id: fetch, name: F, step_type: noop, retry: {idempotent: true}}\n"
            "  - {id: append, name: A, step_type: noop}\n"
            "  - {id: report, name: R, step_type: noop, depends_on: [fetch]}\n"
        ),
        lambda step_id, attempt: step_id,
        {},
    ),
}
CRASHES: dict[str, set[str]] = {"crash_and_resume": {"fetch", "append"}}
"""The steps running when the executor was killed: the scenario's first drive stops there."""


RECORDED_WORKSPACE = "ws"
"""Histories are kept with this workspace: where a replay's workspace is differs per machine."""


def _scenario(name: str) -> Replay:
    text, outcomes, variables = SCENARIOS[name]
    replay = Replay(plan_of(text()), variables)
    if name in CRASHES:
        replay.crash_while_running(outcomes, CRASHES[name])
    replay.run_to_end(outcomes)
    return replay


def _replayed(path: Path) -> Replay:
    """The recorded history played again by the executor, with the outcomes it recorded."""
    recorded = _load(path)
    started = recorded[0]
    assert isinstance(started, MissionStarted)
    replay = Replay(MissionRun.fold(recorded[:1]).plan, started.variables)
    outcomes = recorded_outcomes(recorded)
    # A history with interrupted attempts was cut by a crash while they ran: the replay's first
    # executor stops there too, and the next one resumes through the real recover.
    interrupted = {e.step_id for e in recorded if isinstance(e, StepInterrupted)}
    if interrupted:
        replay.crash_while_running(outcomes, interrupted)
    replay.run_to_end(outcomes)
    return replay


def _encode(events: list[RunEvent]) -> str:
    lines = []
    for e in events:
        payload = run_event_payload(e)
        if isinstance(e, MissionStarted):
            payload["workspace"] = RECORDED_WORKSPACE
        record = {"type": e.type, "version": run_event_version(e), "payload": payload}
        lines.append(json.dumps(record, sort_keys=True))
    return "\n".join(lines) + "\n"


def _load(path: Path) -> list[RunEvent]:
    """The recorded facts, read the way the executor reads its store: sealed, then upcast."""
    return [run_fact(event) for event in recorded_history(path)]


def _without_durations(events: list[RunEvent]) -> list[RunEvent]:
    return [
        e.model_copy(update={"duration_ms": 0}) if isinstance(e, StepSucceeded) else e
        for e in events
    ]


def _without_inputs(events: list[RunEvent]) -> list[RunEvent]:
    return [
        e.model_copy(update={"inputs": None, "input_error": None})
        if isinstance(e, StepStarted)
        else e
        for e in events
    ]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_recorded_history_replays_through_the_executor_identically(name: str) -> None:
    path = HISTORIES / f"{name}.jsonl"
    if os.environ.get("RUSTCHAIN_RECORD_HISTORIES") == "1":
        path.write_text(_encode(_scenario(name).history))

    recorded = _load(path)

    assert _encode(_replayed(path).history) == _encode(recorded)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scripted_scenario_still_records_its_history(name: str) -> None:
    assert _encode(_scenario(name).history) == _encode(_load(HISTORIES / f"{name}.jsonl"))


@pytest.mark.parametrize("name", sorted(p.stem for p in V1_HISTORIES.glob("*.jsonl")))
def test_version_1_history_is_upcast_and_replayed_identically_but_for_inputs_and_durations(
    name: str,
) -> None:
    recorded = _load(V1_HISTORIES / f"{name}.jsonl")
    replayed = _replayed(V1_HISTORIES / f"{name}.jsonl").history

    assert all(not e.inputs_recorded for e in recorded if isinstance(e, StepStarted))
    assert all(e.inputs_recorded for e in replayed if isinstance(e, StepStarted))
    # Version 1 was recorded by a simulation that timed each success at 1 ms; the executor
    # records no duration (0): the decisions, not the timings, are what must replay.
    assert _encode(_without_durations(_without_inputs(replayed))) == _encode(
        _without_durations(recorded)
    )


def test_recorded_starts_hold_the_parameters_the_runner_was_given() -> None:
    history = _load(HISTORIES / "code_analysis_with_retry.jsonl")
    starts = {e.step_id: e for e in history if isinstance(e, StepStarted)}

    assert starts["list_sources"].inputs == {"path": "services", "pattern": "*.py"}
    assert starts["remember_size"].inputs == {
        "collection": "code-analysis",
        "content": "Python line count of services: 120 total",
    }


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_recorded_history_folds_into_a_finished_run(name: str) -> None:
    run = MissionRun.fold(_load(HISTORIES / f"{name}.jsonl"))

    assert run.finished
    assert all(state.status in FINISHED for state in run.steps.values())


def test_code_analysis_history_shows_the_retry() -> None:
    run = MissionRun.fold(_load(HISTORIES / "code_analysis_with_retry.jsonl"))

    assert run.outcome == "succeeded"
    assert run.steps["count_lines"].attempt == 2
    assert run.steps["count_lines"].failures == 1
    assert run.outputs == {"report": "ok"}


@st.composite
def random_runs(draw: st.DrawFn) -> tuple[str, dict[tuple[str, int], bool]]:
    """A random DAG mission with random retry policies and random attempt outcomes."""
    size = draw(st.integers(min_value=1, max_value=12))
    lines = ['version: "1.0"', "name: random"]
    lines.append(
        f"config: {{max_parallel_steps: {draw(st.integers(1, 4))}, "
        f"fail_fast: {str(draw(st.booleans())).lower()}}}"
    )
    lines.append("steps:")
    for i in range(size):
        deps = (
            draw(st.lists(st.sampled_from([f"s{j}" for j in range(i)]), unique=True, max_size=3))
            if i
            else []
        )
        attempts = draw(st.integers(1, 3))
        tolerate = str(draw(st.booleans())).lower()
        lines.append(
            f"  - {{id: s{i}, name: S, step_type: noop, depends_on: [{', '.join(deps)}], "
            f"continue_on_error: {tolerate}, "
            f"retry: {{max_attempts: {attempts}, backoff_seconds: 1}}}}"
        )
    outcomes = draw(
        st.dictionaries(
            st.tuples(st.sampled_from([f"s{i}" for i in range(size)]), st.integers(1, 3)),
            st.booleans(),
        )
    )
    return "\n".join(lines) + "\n", outcomes


@settings(max_examples=150, deadline=None)
@given(random_runs())
def test_any_run_ends_and_respects_dependencies_attempts_and_parallelism(
    case: tuple[str, dict[tuple[str, int], bool]],
) -> None:
    text, failures = case
    plan = plan_of(text)
    replay = Replay(plan)

    def outcome(step_id: str, attempt: int) -> str:
        if failures.get((step_id, attempt), False):
            raise StepFailedError("scripted")
        return step_id

    run = replay.run_to_end(outcome)

    assert run.finished
    history = replay.history
    assert max_running(history) <= (plan.config.max_parallel_steps or 4)
    succeeded_before: set[str] = set()
    finished_before: dict[str, str] = {}
    for event in history:
        if isinstance(event, StepStarted):
            step = plan.step(event.step_id)
            assert event.attempt <= step.retry.max_attempts
            for dep in step.depends_on:
                assert dep in succeeded_before or (
                    finished_before.get(dep) == "failed" and plan.step(dep).continue_on_error
                )
        elif event.type == "StepSucceeded":
            succeeded_before.add(event.step_id)  # type: ignore[union-attr]
            finished_before[event.step_id] = "succeeded"  # type: ignore[union-attr]
        elif event.type == "StepFailed" and event.retry_at is None:  # type: ignore[union-attr]
            finished_before[event.step_id] = "failed"  # type: ignore[union-attr]
    assert MissionRun.fold(history).outcome == run.outcome
