"""Recorded run histories replay to the same state and are re-decided identically.

A change to the run decisions that would make a recorded history play out differently fails here,
as with Temporal's replay tests. To re-record after an intended change:
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

from rustchain.domain.mission_run import FINISHED, MissionRun
from rustchain.domain.run_events import (
    RunEvent,
    StepStarted,
    run_event_payload,
    run_event_version,
    run_fact,
)
from tests.paths import DATA
from tests.unit.run_simulation import Simulation, StepFailedError, plan_of, recorded_history

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
}


def _simulate(name: str) -> Simulation:
    text, outcomes, variables = SCENARIOS[name]
    simulation = Simulation(plan_of(text()), variables)
    simulation.run_to_end(outcomes)
    return simulation


def _encode(events: list[RunEvent]) -> str:
    lines = [
        json.dumps(
            {"type": e.type, "version": run_event_version(e), "payload": run_event_payload(e)},
            sort_keys=True,
        )
        for e in events
    ]
    return "\n".join(lines) + "\n"


def _load(path: Path) -> list[RunEvent]:
    """The recorded facts, read the way the executor reads its store: sealed, then upcast."""
    return [run_fact(event) for event in recorded_history(path)]


def _without_inputs(events: list[RunEvent]) -> list[RunEvent]:
    return [
        e.model_copy(update={"inputs": None, "input_error": None})
        if isinstance(e, StepStarted)
        else e
        for e in events
    ]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_recorded_history_is_re_decided_identically(name: str) -> None:
    path = HISTORIES / f"{name}.jsonl"
    if os.environ.get("RUSTCHAIN_RECORD_HISTORIES") == "1":
        path.write_text(_encode(_simulate(name).history))

    recorded = _load(path)

    assert _encode(_simulate(name).history) == _encode(recorded)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_version_1_history_is_upcast_and_re_decided_identically_but_for_the_inputs(
    name: str,
) -> None:
    recorded = _load(V1_HISTORIES / f"{name}.jsonl")
    simulated = _simulate(name).history

    assert all(not e.inputs_recorded for e in recorded if isinstance(e, StepStarted))
    assert all(e.inputs_recorded for e in simulated if isinstance(e, StepStarted))
    assert _encode(_without_inputs(simulated)) == _encode(recorded)


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
    simulation = Simulation(plan)

    def outcome(step_id: str, attempt: int) -> str:
        if failures.get((step_id, attempt), False):
            raise StepFailedError("scripted")
        return step_id

    run = simulation.run_to_end(outcome)

    assert run.finished
    assert simulation.max_running <= (plan.config.max_parallel_steps or 4)
    succeeded_before: set[str] = set()
    finished_before: dict[str, str] = {}
    for event in simulation.history:
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
    assert MissionRun.fold(simulation.history).outcome == run.outcome
