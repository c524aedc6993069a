"""Workspaces a new owner can use (issue 15): a mission whose folder is lost mid-run (another
replica takes it over, or a pod restarts on an empty volume) goes on with its earlier steps'
files, restored from the snapshot its chain records; the snapshots are artifacts like any other."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rustchain.audit.artifacts import artifact_problems
from rustchain.bootstrap.executor import build_executor
from rustchain.domain.runs.mission_run import MissionRun
from rustchain.domain.runs.run_events import (
    RunEvent,
    StepSucceeded,
    WorkspaceNotSaved,
    WorkspaceSaved,
    run_fact,
)
from rustchain.executor.application import ExecutorApplication
from rustchain.executor.driver import MissionDriver
from rustchain.platform.nats.relay import JetStreamRelay
from rustchain.platform.nats.server import NatsServer
from rustchain.platform.storage.event_store import (
    EventStoreSettings,
    new_cipher_key,
    open_event_store,
)
from tests.integration.conftest import _drop_tables, postgres_url
from tests.integration.test_artifacts import _object
from tests.unit.compile_helpers import plan_of

TENANT = "acme"
MISSION = """\
version: "1.0"
name: files across owners
steps:
  - {id: one, step_type: create_file, parameters: {path: a.txt, content: alpha}}
  - id: two
    step_type: create_file
    depends_on: [one]
    parameters: {path: sub/b.txt, content: beta}
  - id: three
    step_type: read_file
    depends_on: [two]
    retry: {idempotent: true}
    parameters: {path: a.txt}
  - {id: four, step_type: read_file, depends_on: [three], parameters: {path: sub/b.txt}}
"""
SNAPSHOTS = {"RUSTCHAIN_WORKSPACE_SNAPSHOTS": "artifact"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStoreSettings]:
    """An encrypted store of each kind, its tables unique to the test."""
    name = f"t{uuid.uuid4().hex[:12]}"
    key = new_cipher_key()
    if request.param == "sqlite":
        yield EventStoreSettings(name=name, home=tmp_path, cipher_key=key)
        return
    url = postgres_url()
    yield EventStoreSettings(name=name, home=tmp_path, database_url=url, cipher_key=key)
    _drop_tables(url, name)


def _executor(
    settings: EventStoreSettings, environ: dict[str, str] | None = None
) -> ExecutorApplication:
    """A fresh executor process on the shared store: a new replica."""
    env = {"RUSTCHAIN_HOME": str(settings.home), **(environ or SNAPSHOTS)}
    return build_executor(env, open_event_store(settings), policy_for=None)


def _stop_after(application: ExecutorApplication, step_id: str) -> None:
    """End the drive (as a lost replica would) once `step_id`'s result is committed: the step
    it releases is recorded as started and never runs here."""

    def listener(run: MissionRun, facts: list[RunEvent]) -> None:
        if any(isinstance(f, StepSucceeded) and f.step_id == step_id for f in facts):
            task = asyncio.current_task()
            assert task is not None
            task.cancel()

    application.subscribe(listener)


def _drive_until_lost(settings: EventStoreSettings, environ: dict[str, str] | None = None) -> str:
    first = _executor(settings, environ)
    mission = first.start(TENANT, plan_of(MISSION), {})
    _stop_after(first, "two")
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(first.drive(TENANT, mission))
    first.store.close()
    return mission


def _take_over(
    settings: EventStoreSettings, mission: str, environ: dict[str, str] | None = None
) -> MissionRun:
    second = _executor(settings, environ)

    async def resume() -> MissionRun:
        driver = MissionDriver(second)
        assert driver.resume_unfinished() == [(TENANT, mission)]
        return await asyncio.wait_for(driver.finished(TENANT, mission), 30)

    try:
        return asyncio.run(resume())
    finally:
        second.store.close()


def test_a_new_owner_restores_the_workspace_its_chain_records_and_later_steps_see_the_files(
    settings: EventStoreSettings, nats_server: NatsServer
) -> None:
    mission = _drive_until_lost(settings)
    store = open_event_store(settings)
    workspace = Path(
        MissionRun.fold([run_fact(e) for e in store.mission_events(TENANT, mission)][:1]).workspace
    )
    assert (workspace / "sub" / "b.txt").read_text() == "beta"
    shutil.rmtree(workspace)  # the new owner's volume does not hold it

    run = _take_over(settings, mission)

    assert run.outcome == "succeeded", {k: s.error for k, s in run.steps.items()}
    assert (run.steps["three"].output, run.steps["four"].output) == ("alpha", "beta")
    events = store.mission_events(TENANT, mission)
    facts = [run_fact(e) for e in events]
    kinds = [(type(f).__name__, getattr(f, "step_id", None)) for f in facts]
    # Each snapshot is recorded right after the result it follows, in that result's append.
    after_two = kinds.index(("StepSucceeded", "two"))
    assert kinds[after_two + 1] == ("WorkspaceSaved", None)
    assert events[after_two + 1].occurred_at == events[after_two].occurred_at
    saved = [f for f in facts if isinstance(f, WorkspaceSaved)]
    assert [s.after_step for s in saved] == ["one", "two"]  # read steps change nothing
    assert saved[1].files == 2

    # The archives are artifacts like any other: kept (encrypted) beside the events, checked by
    # the auditors' artifact check, and relayed to the tenant's object store.
    assert (
        artifact_problems(events, lambda event, ref: store.artifacts.get(TENANT, ref.sha256)) == []
    )
    relay = JetStreamRelay(store, nats_server.url)
    try:
        asyncio.run(relay.catch_up(timeout=60))
        for snapshot in saved:
            held = asyncio.run(_object(nats_server.url, TENANT, snapshot.ref.sha256))
            assert len(held) == snapshot.ref.size
        assert relay.artifacts.uploaded == 2
    finally:
        store.close()


def test_without_snapshots_the_new_owner_does_not_have_the_files(tmp_path: Path) -> None:
    settings = EventStoreSettings(name="executor", home=tmp_path)
    mission = _drive_until_lost(settings, {"RUSTCHAIN_WORKSPACE_SNAPSHOTS": "off"})
    shutil.rmtree(tmp_path / "workspaces" / TENANT / mission)
    run = _take_over(settings, mission, {"RUSTCHAIN_WORKSPACE_SNAPSHOTS": "off"})
    assert run.outcome == "failed"
    assert "workspace" in (run.steps["three"].error or "")


def test_a_replica_whose_folder_holds_the_snapshot_keeps_its_folder(tmp_path: Path) -> None:
    settings = EventStoreSettings(name="executor", home=tmp_path)
    mission = _drive_until_lost(settings)
    folder = tmp_path / "workspaces" / TENANT / mission
    inode = folder.stat().st_ino
    run = _take_over(settings, mission)
    assert run.outcome == "succeeded"
    assert folder.stat().st_ino == inode


def test_a_workspace_over_the_limit_is_recorded_unsaved_and_a_new_owner_without_it_cancels(
    tmp_path: Path,
) -> None:
    settings = EventStoreSettings(name="executor", home=tmp_path)
    small = {**SNAPSHOTS, "RUSTCHAIN_WORKSPACE_SNAPSHOT_MAX_BYTES": "7"}
    mission = _drive_until_lost(settings, small)
    shutil.rmtree(tmp_path / "workspaces" / TENANT / mission)
    run = _take_over(settings, mission, small)
    assert run.outcome == "cancelled"
    assert run.cancel_reason is not None
    assert (
        "after step 'two' was not saved (its files are 9 bytes, over the snapshot limit of 7"
        in (run.cancel_reason)
    )
    store = open_event_store(settings)
    try:
        facts = [run_fact(e) for e in store.mission_events(TENANT, mission)]
    finally:
        store.close()
    # 'one' left 5 bytes (saved); 'two' went over: recorded once, when it stopped being saved.
    assert [
        type(f).__name__ for f in facts if isinstance(f, WorkspaceSaved | WorkspaceNotSaved)
    ] == [
        "WorkspaceSaved",
        "WorkspaceNotSaved",
    ]
