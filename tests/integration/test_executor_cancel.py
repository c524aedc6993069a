"""Cancelling a mission the same executor is driving: nothing new starts, it ends cancelled."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rustchain.domain.event_chain import verify_chain
from rustchain.executor.application import ExecutorApplication
from rustchain.platform.event_store import EventStoreSettings, open_event_store
from rustchain.steps import default_registry
from tests.integration.event_helpers import wait_until
from tests.unit.run_simulation import plan_of

MISSION = """\
version: "1.0"
name: cancel-me
steps:
  - id: wait
    name: Wait for the test
    step_type: command
    parameters: {command: sh, args: ["-c", "touch started; while [ ! -f go ]; do sleep 0.02; done"]}
  - {id: after, name: After, step_type: noop, depends_on: [wait]}
"""


def test_cancel_during_a_drive_is_recorded_by_the_drive_and_ends_the_run(tmp_path: Path) -> None:
    store = open_event_store(EventStoreSettings(name="executor", home=tmp_path))
    executor = ExecutorApplication(store, default_registry(include_plugins=False), tmp_path / "ws")
    workspace = tmp_path / "work"
    mission = executor.start("acme", plan_of(MISSION), {}, workspace=workspace)

    async def scenario() -> tuple[str | None, bool, bool]:
        drive = asyncio.ensure_future(executor.drive("acme", mission))
        await wait_until((workspace / "started").exists, 20, "the step to start")
        first = executor.cancel("acme", mission, "operator asked")
        again = executor.cancel("acme", mission, "twice")
        (workspace / "go").touch()
        run = await asyncio.wait_for(drive, 20)
        return run.outcome, first, again

    outcome, first, again = asyncio.run(scenario())

    events = store.mission_events("acme", mission)
    store.close()
    assert (outcome, first, again) == ("cancelled", True, False)
    assert [e.type for e in events] == [
        "MissionStarted",
        "StepStarted",
        "MissionCancelRequested",
        "StepSkipped",
        "StepSucceeded",
        "MissionFinished",
    ]
    assert verify_chain(events) is None
