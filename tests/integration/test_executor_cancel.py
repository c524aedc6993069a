"""Cancelling a mission the same executor is driving: nothing new starts, it ends cancelled."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rustchain.bootstrap.executor import build_executor
from rustchain.domain.events.chain import verify_chain
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.steps import default_registry
from tests.conditions import Signal
from tests.unit.compile_helpers import plan_of

MISSION = """\
version: "1.0"
name: cancel-me
steps:
  - id: wait
    name: Wait for the test
    step_type: command
    parameters: {command: sh, args: ["-c", "echo started > started.fifo; read go < go.fifo"]}
  - {id: after, name: After, step_type: noop, depends_on: [wait]}
"""


def test_cancel_during_a_drive_is_recorded_by_the_drive_and_ends_the_run(tmp_path: Path) -> None:
    store = open_event_store(EventStoreSettings(name="executor", home=tmp_path))
    executor = build_executor(
        {"RUSTCHAIN_HOME": str(tmp_path)},
        store,
        registry=default_registry(include_plugins=False),
        policy_for=None,
    )
    workspace = tmp_path / "work"
    workspace.mkdir()
    started, go = Signal(workspace / "started.fifo"), Signal(workspace / "go.fifo")
    mission = executor.start("acme", plan_of(MISSION), {}, workspace=workspace)

    async def scenario() -> tuple[str | None, bool, bool]:
        drive = asyncio.ensure_future(executor.drive("acme", mission))
        await asyncio.to_thread(started.wait, 20, "the step has started")
        first = executor.cancel("acme", mission, "operator asked")
        again = executor.cancel("acme", mission, "twice")
        go.send()
        run = await asyncio.wait_for(drive, 20)
        return run.outcome, first, again

    try:
        outcome, first, again = asyncio.run(scenario())
    finally:
        started.close()
        go.close()

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
