"""When a step boundary keeps a snapshot, when it keeps none, and what a drive's start restores;
and the facts a snapshot records, folded and shown like every other run fact."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from rustchain.domain.events.envelope import EventDraft, seal_all
from rustchain.domain.plans.artifacts import artifact
from rustchain.domain.runs import run_decisions as decide
from rustchain.domain.runs.audit import timeline
from rustchain.domain.runs.mission_run import MissionRun
from rustchain.domain.runs.run_events import (
    RunEvent,
    WorkspaceNotSaved,
    WorkspaceSaved,
    run_event_payload,
    run_event_version,
    run_fact,
)
from rustchain.executor import workspace_snapshots
from rustchain.executor.workspace_snapshots import (
    SnapshotMode,
    SnapshotSettings,
    WorkspaceSnapshotError,
    WorkspaceSnapshots,
)
from rustchain.platform.storage import workspace_archive
from rustchain.platform.storage.artifact_store import HeldArtifactStore
from rustchain.platform.storage.workspace_archive import TreeScan, WorkspaceArchive
from tests.unit.compile_helpers import plan_of

TENANT, MISSION = "acme", "m1"
PLAN = """\
version: "1.0"
name: snapshots
steps:
  - {id: a, step_type: noop}
  - {id: b, step_type: noop, depends_on: [a]}
"""


def _run(workspace: Path) -> MissionRun:
    return MissionRun.fold(decide.start_mission(plan_of(PLAN), {}, str(workspace)))


def _snapshots(max_bytes: int = 1_000_000) -> WorkspaceSnapshots:
    return WorkspaceSnapshots(
        HeldArtifactStore(), SnapshotSettings(SnapshotMode.ARTIFACT, max_bytes)
    )


def _save(snapshots: WorkspaceSnapshots, run: MissionRun, step: str = "a") -> list[RunEvent]:
    facts = asyncio.run(snapshots.save(TENANT, MISSION, run, step))
    for fact in facts:
        run.apply(fact)
    return facts


def test_a_changed_workspace_is_kept_and_an_unchanged_one_costs_no_new_snapshot(
    tmp_path: Path,
) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.txt").write_text("one")
    run, snapshots = _run(root), _snapshots()
    [saved] = _save(snapshots, run)
    assert isinstance(saved, WorkspaceSaved)
    assert snapshots.artifacts.get(TENANT, saved.ref.sha256) is not None
    assert _save(snapshots, run, "b") == []  # same tree, same archive: nothing recorded
    (root / "a.txt").write_text("two")
    [again] = _save(snapshots, run, "b")
    assert isinstance(again, WorkspaceSaved) and again.ref.sha256 != saved.ref.sha256
    assert run.workspace_saved == again


def test_an_unchanged_listing_is_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.txt").write_text("one")
    run, snapshots = _run(root), _snapshots()
    # As if the write were older than the racy margin (a ctime cannot be set back).
    monkeypatch.setattr(workspace_archive, "RACY_NANOSECONDS", -(10**18))
    _save(snapshots, run)
    archived: list[Path] = []
    real = workspace_snapshots.archive_tree

    def counting(root: Path, scan: TreeScan, max_bytes: int) -> WorkspaceArchive:
        archived.append(root)
        return real(root, scan, max_bytes)

    monkeypatch.setattr(workspace_snapshots, "archive_tree", counting)
    assert _save(snapshots, run, "b") == []
    assert archived == []  # listed, not read
    (root / "a.txt").write_text("two")
    [saved] = _save(snapshots, run, "b")
    assert isinstance(saved, WorkspaceSaved)
    assert archived == [root]


def test_over_the_limit_the_reason_is_recorded_once_and_saving_resumes_when_it_fits(
    tmp_path: Path,
) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "big").write_bytes(b"x" * 100)
    run, snapshots = _run(root), _snapshots(max_bytes=50)
    [unsaved] = _save(snapshots, run)
    assert isinstance(unsaved, WorkspaceNotSaved)
    assert "100 bytes, over the snapshot limit of 50 bytes" in unsaved.reason
    (root / "big").write_bytes(b"x" * 200)
    assert _save(snapshots, run, "b") == []
    (root / "big").write_bytes(b"x" * 10)
    [saved] = _save(snapshots, run, "b")
    assert isinstance(saved, WorkspaceSaved)
    assert run.workspace_not_saved is None


def test_an_unreadable_file_is_recorded_as_the_reason_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "secret").write_text("x")

    def refused(root: Path, path: str, info: os.stat_result) -> None:
        # What a mode-000 file gives a non-root executor (root reads any file).
        raise PermissionError(13, "Permission denied", str(root / path))

    monkeypatch.setattr(workspace_archive, "_member", refused)
    [unsaved] = _save(_snapshots(), _run(root))
    assert isinstance(unsaved, WorkspaceNotSaved)
    assert "its files cannot be archived: [Errno 13] Permission denied" in unsaved.reason


def test_a_drive_start_restores_a_missing_folder_and_refuses_a_missing_archive(
    tmp_path: Path,
) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.txt").write_text("one")
    run, snapshots = _run(root), _snapshots()
    _save(snapshots, run)
    shutil.rmtree(root)
    assert asyncio.run(snapshots.restore(TENANT, MISSION, run)) is None
    assert (root / "a.txt").read_text() == "one"
    shutil.rmtree(root)
    elsewhere = WorkspaceSnapshots(HeldArtifactStore(), snapshots.settings)
    with pytest.raises(
        WorkspaceSnapshotError, match=r"cannot be restored: artifact \w+ \(.*\) is missing"
    ):
        asyncio.run(elsewhere.restore(TENANT, MISSION, run))


def test_a_drive_start_puts_back_the_recorded_tree_over_a_stale_folder(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.txt").write_text("recorded")
    run, snapshots = _run(root), _snapshots()
    _save(snapshots, run)
    # An older copy on a volume a pod restarted with: other content, an extra file.
    (root / "a.txt").write_text("stale")
    (root / "extra.txt").write_text("not in the snapshot")
    assert asyncio.run(snapshots.restore(TENANT, MISSION, run)) is None
    assert sorted(p.name for p in root.iterdir()) == ["a.txt"]
    assert (root / "a.txt").read_text() == "recorded"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws"]


def test_a_mission_without_a_snapshot_yet_gets_its_folder_back_empty(tmp_path: Path) -> None:
    root = tmp_path / "gone" / "ws"
    assert asyncio.run(_snapshots().restore(TENANT, MISSION, _run(root))) is None
    assert root.is_dir()


def test_a_workspace_the_mission_named_is_never_archived(tmp_path: Path) -> None:
    named = plan_of(PLAN.replace("steps:", "config: {workspace: repo}\nsteps:"))
    run = MissionRun.fold(decide.start_mission(named, {}, str(tmp_path)))
    (tmp_path / "f").write_text("the operator's")
    assert _save(_snapshots(), run) == []


def test_snapshot_facts_are_folded_stored_and_shown_in_the_audit_timeline(tmp_path: Path) -> None:
    made = artifact(b"tar bytes", "application/x-tar")
    saved = WorkspaceSaved(after_step="a", archive={"$artifact": made.ref}, files=3, omitted=1)
    unsaved = WorkspaceNotSaved(after_step="b", reason="too large")
    facts: list[RunEvent] = [
        *decide.start_mission(plan_of(PLAN), {}, str(tmp_path)),
        saved,
        unsaved,
    ]
    drafts = [
        EventDraft(
            id=f"00000000-0000-0000-0000-00000000000{n}",
            tenant=TENANT,
            mission_id=MISSION,
            service="executor",
            aggregate_id=MISSION,
            aggregate_version=n,
            type=fact.type,
            version=run_event_version(fact),
            occurred_at="2026-01-01T00:00:00Z",
            payload=run_event_payload(fact),
        )
        for n, fact in enumerate(facts, start=1)
    ]
    events = seal_all(drafts, {})
    assert events[1].payload["archive"] == made.ref.to_value()
    read = [run_fact(e) for e in events]
    assert read[1:] == [saved, unsaved]
    run = MissionRun.fold(read)
    assert (run.workspace_saved, run.workspace_not_saved) == (saved, unsaved)
    details = [entry.detail for entry in timeline(events)][1:]
    assert details == [
        f"after a: 3 files, 9 bytes, artifact {made.ref.sha256}",
        "after b: too large",
    ]
