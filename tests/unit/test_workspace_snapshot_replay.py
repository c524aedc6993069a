"""A history recorded with workspace snapshots on replays identically through the executor,
across a crash and its resume (which finds the folder holding the snapshot and keeps it)."""

from __future__ import annotations

import os

from rustchain.domain.runs.mission_run import MissionRun
from rustchain.domain.runs.run_events import StepInterrupted, StepSucceeded, WorkspaceSaved
from tests.paths import DATA
from tests.replay import Outcome, Replay, recorded_outcomes
from tests.unit.compile_helpers import plan_of
from tests.unit.test_run_replay import _encode, _load

HISTORY = DATA / "histories" / "snapshots_crash_and_resume.jsonl"
SNAPSHOTS = {"RUSTCHAIN_WORKSPACE_SNAPSHOTS": "artifact"}
MISSION = (
    'version: "1.0"\nname: snapshots\nconfig: {fail_fast: false}\nsteps:\n'
    "  - {id: fetch, name: F, step_type: noop, retry: {idempotent: true}}\n"
    "  - {id: append, name: A, step_type: noop}\n"
    "  - {id: report, name: R, step_type: noop, depends_on: [fetch]}\n"
)
CRASHED = {"fetch", "append"}


def _run(replay: Replay, outcomes: Outcome) -> Replay:
    replay.crash_while_running(outcomes, CRASHED)
    replay.run_to_end(outcomes)
    return replay


def test_a_history_with_snapshots_replays_through_a_crash_identically() -> None:
    if os.environ.get("RUSTCHAIN_RECORD_HISTORIES") == "1":
        scenario = _run(Replay(plan_of(MISSION), {}, SNAPSHOTS), lambda step_id, _: step_id)
        HISTORY.write_text(_encode(scenario.history))
    recorded = _load(HISTORY)
    replay = Replay(MissionRun.fold(recorded[:1]).plan, {}, SNAPSHOTS)

    replayed = _run(replay, recorded_outcomes(recorded)).history

    assert _encode(replayed) == _encode(recorded)
    assert {e.step_id for e in recorded if isinstance(e, StepInterrupted)} == CRASHED
    # One snapshot (no step changes the folder), right after the first result, in its append.
    [at] = [n for n, e in enumerate(recorded) if isinstance(e, WorkspaceSaved)]
    assert isinstance(recorded[at - 1], StepSucceeded)
