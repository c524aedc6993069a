"""Durable execution: parallelism, retries, fail_fast, continue_on_error, crash recovery.

Each mission runs on the real executor application (tests/replay.py), with scripted runners.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from rustchain.domain.runs import run_decisions as decide
from rustchain.domain.runs.mission_run import MissionRun, RunTransitionError, StepStatus
from rustchain.domain.runs.run_events import StepFailed, StepInterrupted, StepSkipped, StepStarted
from tests.replay import MISSION_ID, TENANT, Replay, StepFailedError, max_running, started
from tests.unit.compile_helpers import plan_of

HEADER = 'version: "1.0"\nname: run\n'
DIAMOND = (
    HEADER
    + "steps:\n"
    + "  - {id: fetch, name: F, step_type: noop}\n"
    + "  - {id: left, name: L, step_type: noop, depends_on: [fetch]}\n"
    + "  - {id: right, name: R, step_type: noop, depends_on: [fetch]}\n"
    + "  - {id: join, name: J, step_type: noop, depends_on: [left, right]}\n"
)


def ok(step_id: str, attempt: int) -> Any:
    return f"{step_id} done"


def test_independent_steps_start_together_and_dependents_wait() -> None:
    replay = Replay(plan_of(DIAMOND))

    run = replay.run_to_end(ok)

    starts = [[e.step_id for e in c if isinstance(e, StepStarted)] for c in replay.commits]
    assert [s for s in starts if s] == [["fetch"], ["left", "right"], ["join"]]
    assert run.outcome == "succeeded"


def test_parallelism_never_exceeds_max_parallel_steps() -> None:
    steps = "".join(f"  - {{id: s{i}, name: S, step_type: noop}}\n" for i in range(10))
    replay = Replay(plan_of(HEADER + "config: {max_parallel_steps: 3}\nsteps:\n" + steps))

    replay.run_to_end(ok)

    assert max_running(replay.history) == 3
    assert len(started(replay.history)) == 10


def test_failed_step_is_retried_after_its_backoff_then_succeeds() -> None:
    plan = plan_of(
        HEADER
        + "steps:\n  - id: flaky\n    name: F\n    step_type: noop\n"
        + "    retry: {max_attempts: 3, backoff_seconds: 5}\n"
    )
    replay = Replay(plan)

    def flaky(step_id: str, attempt: int) -> str:
        if attempt < 3:
            raise StepFailedError(f"attempt {attempt} failed")
        return "third time lucky"

    run = replay.run_to_end(flaky)

    failures = [e for e in replay.history if isinstance(e, StepFailed)]
    assert [f.attempt for f in failures] == [1, 2]
    assert failures[1].retry_at is not None and failures[0].retry_at is not None
    assert failures[1].retry_at - failures[0].retry_at >= timedelta(seconds=5)
    assert run.outcome == "succeeded"
    assert run.steps["flaky"].output == "third time lucky"


def test_a_step_that_fails_every_attempt_fails_the_mission_and_skips_dependents() -> None:
    replay = Replay(plan_of(DIAMOND))

    def left_breaks(step_id: str, attempt: int) -> str:
        if step_id == "left":
            raise StepFailedError("boom")
        return "fine"

    run = replay.run_to_end(left_breaks)

    assert run.outcome == "failed"
    assert run.steps["left"].status is StepStatus.FAILED
    assert run.steps["join"].status is StepStatus.SKIPPED
    skipped = [e for e in replay.history if isinstance(e, StepSkipped)]
    assert [s.step_id for s in skipped] == ["join"]


def test_fail_fast_skips_every_step_not_yet_started() -> None:
    text = (
        HEADER
        + "config: {max_parallel_steps: 1, fail_fast: true}\nsteps:\n"
        + "  - {id: a, name: A, step_type: noop}\n"
        + "  - {id: b, name: B, step_type: noop}\n"
        + "  - {id: c, name: C, step_type: noop}\n"
    )
    replay = Replay(plan_of(text))

    def a_breaks(step_id: str, attempt: int) -> str:
        if step_id == "a":
            raise StepFailedError("boom")
        return "fine"

    run = replay.run_to_end(a_breaks)

    assert run.outcome == "failed"
    assert {s: run.steps[s].status for s in "bc"} == {
        "b": StepStatus.SKIPPED,
        "c": StepStatus.SKIPPED,
    }


def test_without_fail_fast_independent_branches_still_run() -> None:
    text = (
        HEADER
        + "config: {max_parallel_steps: 1, fail_fast: false}\nsteps:\n"
        + "  - {id: a, name: A, step_type: noop}\n"
        + "  - {id: b, name: B, step_type: noop}\n"
    )
    replay = Replay(plan_of(text))

    def a_breaks(step_id: str, attempt: int) -> str:
        if step_id == "a":
            raise StepFailedError("boom")
        return "fine"

    run = replay.run_to_end(a_breaks)

    assert run.outcome == "failed"
    assert run.steps["b"].status is StepStatus.SUCCEEDED


def test_continue_on_error_lets_dependents_run_and_the_mission_succeed() -> None:
    text = (
        HEADER
        + "steps:\n"
        + "  - {id: lint, name: L, step_type: noop, continue_on_error: true}\n"
        + "  - {id: report, name: R, step_type: noop, depends_on: [lint]}\n"
    )
    replay = Replay(plan_of(text))

    def lint_breaks(step_id: str, attempt: int) -> str:
        if step_id == "lint":
            raise StepFailedError("warnings found")
        return "report"

    run = replay.run_to_end(lint_breaks)

    assert run.outcome == "succeeded"
    assert run.steps["report"].status is StepStatus.SUCCEEDED


def test_after_a_crash_an_idempotent_step_runs_again_and_a_non_idempotent_one_fails() -> None:
    text = (
        HEADER
        + "config: {fail_fast: false}\nsteps:\n"
        + "  - id: fetch\n    name: F\n    step_type: noop\n    retry: {idempotent: true}\n"
        + "  - {id: append, name: A, step_type: noop}\n"
    )
    replay = Replay(plan_of(text))
    # The executor process dies while both run; a new one folds the stored history and recovers.
    replay.crash_while_running(ok, held={"fetch", "append"})

    run = replay.run_to_end(ok)

    interrupted = [e for e in replay.history if isinstance(e, StepInterrupted)]
    assert interrupted == [
        StepInterrupted(
            step_id="fetch", attempt=1, rerun=True, reason=decide.IDEMPOTENT_INTERRUPTED
        ),
        StepInterrupted(
            step_id="append", attempt=1, rerun=False, reason=decide.NOT_IDEMPOTENT_INTERRUPTED
        ),
    ]
    assert started(replay.history) == [("fetch", 1), ("append", 1), ("fetch", 2)]
    assert run.steps["append"].status is StepStatus.FAILED
    assert run.outcome == "failed"


def test_finished_steps_are_never_started_again_after_a_crash() -> None:
    replay = Replay(plan_of(DIAMOND))
    replay.crash_while_running(ok, held={"left", "right"})

    assert decide.recover(replay.run) != []
    replay.run_to_end(ok)
    assert [s for s in started(replay.history) if s[0] == "fetch"] == [("fetch", 1)]
    assert replay.run.finished


def test_cancel_stops_new_steps_and_ends_the_mission_cancelled() -> None:
    replay = Replay(plan_of(DIAMOND))

    def cancelled_while_fetching(step_id: str, attempt: int) -> Any:
        if step_id == "fetch":
            assert replay.application.cancel(TENANT, MISSION_ID, "operator asked")
        return ok(step_id, attempt)

    run = replay.run_to_end(cancelled_while_fetching)

    assert run.outcome == "cancelled"
    assert all(run.steps[s].status is StepStatus.SKIPPED for s in ("left", "right", "join"))
    assert decide.cancel(run, "again") == []
    assert not replay.application.cancel(TENANT, MISSION_ID, "again")


def test_references_are_rendered_from_upstream_outputs_and_variables() -> None:
    text = (
        HEADER
        + "variables: {who: world}\n"
        + "steps:\n"
        + "  - {id: a, name: A, step_type: noop}\n"
        + "  - id: b\n    name: B\n    step_type: create_file\n    depends_on: [a]\n"
        + "    outputs: {count: stats.lines}\n"
        + "    parameters: {path: out.txt, content: 'hi {who}: {a.output} / {previous_result}'}\n"
        + "  - id: c\n    name: C\n    step_type: tool\n    depends_on: [b]\n"
        + "    parameters: {tool: x, parameters: {data: '{b.output}', n: '{b.count}'}}\n"
    )
    replay = Replay(plan_of(text), {"who": "world"})

    def outputs(step_id: str, attempt: int) -> Any:
        return {"a": "A!", "b": {"stats": {"lines": 3}}, "c": None}[step_id]

    replay.run_to_end(outputs)

    assert replay.given["b"]["content"] == "hi world: A! / A!"
    assert replay.given["c"]["parameters"] == {"data": {"stats": {"lines": 3}}, "n": 3}


def test_a_fact_that_cannot_follow_the_history_is_refused() -> None:
    run = MissionRun.fold(decide.start_mission(plan_of(DIAMOND), {}, "ws"))

    with pytest.raises(RunTransitionError, match="while it is pending"):
        run.apply(StepFailed(step_id="fetch", attempt=1, error="x"))
    with pytest.raises(RunTransitionError, match="no step 'nope'"):
        run.apply(StepStarted(step_id="nope", attempt=1))
