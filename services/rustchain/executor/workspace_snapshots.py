"""Workspaces a new owner can use: each step boundary's workspace kept as an artifact (issue 15).

With `RUSTCHAIN_WORKSPACE_SNAPSHOTS=artifact`, the executor archives a mission's workspace after
each batch of step results and records `WorkspaceSaved` in the same append as those results, the
archive committed to the artifact store first (encrypted with the events, relayed to the tenant's
object store before the event). When a drive begins on a replica whose folder does not hold the
recorded snapshot (another replica took the mission over, or a pod restarted on an empty volume),
the snapshot is restored before anything runs. Only folders the executor made are kept: a
workspace the mission named (`config.workspace`) is a folder of the operator's, left alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from rustchain.domain.plans.artifacts import Artifact, ArtifactRef, verified
from rustchain.domain.runs.mission_run import MissionRun
from rustchain.domain.runs.run_events import RunEvent, WorkspaceNotSaved, WorkspaceSaved
from rustchain.platform.storage.artifact_store import ArtifactStore
from rustchain.platform.storage.event_store import EventStore, artifacts_beside
from rustchain.platform.storage.workspace_archive import (
    TAR_MEDIA_TYPE,
    TreeScan,
    WorkspaceArchive,
    WorkspaceTooLargeError,
    archive_tree,
    restore_tree,
    scan_tree,
)

SNAPSHOTS_SETTING = "RUSTCHAIN_WORKSPACE_SNAPSHOTS"
MAX_BYTES_SETTING = "RUSTCHAIN_WORKSPACE_SNAPSHOT_MAX_BYTES"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""Held in memory while archived and kept whole in one database row: tens of megabytes, not
gigabytes. A larger workspace wants a shared (ReadWriteMany) volume instead."""


class SnapshotMode(StrEnum):
    """Where workspaces are kept for a new owner."""

    OFF = "off"
    ARTIFACT = "artifact"


class SnapshotSettingError(ValueError):
    """A snapshot setting that is not one of its values."""


@dataclass(frozen=True)
class SnapshotSettings:
    """Whether workspaces are saved, and the largest one that is."""

    mode: SnapshotMode = SnapshotMode.OFF
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> SnapshotSettings:
        """The settings `RUSTCHAIN_WORKSPACE_SNAPSHOTS` and `..._MAX_BYTES` name, or
        SnapshotSettingError saying what was expected."""
        text = environ.get(SNAPSHOTS_SETTING, "").strip().lower() or SnapshotMode.OFF.value
        try:
            mode = SnapshotMode(text)
        except ValueError:
            choices = " or ".join(m.value for m in SnapshotMode)
            raise SnapshotSettingError(
                f"{SNAPSHOTS_SETTING} must be {choices}, not {text!r}"
            ) from None
        size = environ.get(MAX_BYTES_SETTING, "").strip()
        if not size:
            return cls(mode)
        if not size.isdigit() or int(size) < 1:
            raise SnapshotSettingError(
                f"{MAX_BYTES_SETTING} must be a positive whole number of bytes, not {size!r}"
            )
        return cls(mode, int(size))


@dataclass(frozen=True)
class _Known:
    """A tree this process archived (or restored) and whether its listing vouches for it."""

    fingerprint: str
    sha256: str


class WorkspaceSnapshotError(RuntimeError):
    """A recorded snapshot that cannot be restored (missing, altered, or refused)."""


@dataclass
class WorkspaceSnapshots:
    """Saves workspaces at step boundaries and restores them when a drive begins."""

    artifacts: ArtifactStore
    settings: SnapshotSettings = field(default_factory=SnapshotSettings)
    # The last tree seen per mission: a listing unchanged since costs one scan, no reading.
    _known: dict[tuple[str, str], _Known] = field(default_factory=dict)

    @staticmethod
    def applies(run: MissionRun) -> bool:
        """True for a workspace the executor made (a named one is the operator's folder)."""
        return run.plan.config.workspace is None

    async def save(
        self, tenant: str, mission_id: str, run: MissionRun, after_step: str
    ) -> list[RunEvent]:
        """The fact of the workspace after `after_step`, its archive kept first; none when it
        did not change since the snapshot the run records."""
        if not self.applies(run):
            return []
        return await asyncio.to_thread(self._save, tenant, mission_id, run, after_step)

    def _save(
        self, tenant: str, mission_id: str, run: MissionRun, after_step: str
    ) -> list[RunEvent]:
        key = (tenant, mission_id)
        root = Path(run.workspace)
        scan = scan_tree(root)
        current = run.workspace_saved.ref.sha256 if run.workspace_saved else None
        known = self._known.get(key)
        if known is not None and known.fingerprint == scan.fingerprint and known.sha256 == current:
            return []
        try:
            archive = archive_tree(root, scan, self.settings.max_bytes)
        except (WorkspaceTooLargeError, OSError, ValueError) as error:
            # Over the limit, or unreadable (a file a step made mode 000): the mission goes on
            # here, and the chain says why a new owner would find no copy.
            self._known.pop(key, None)
            reason = str(error) if isinstance(error, WorkspaceTooLargeError) else _unreadable(error)
            if run.workspace_not_saved is not None:
                return []  # recorded when it stops being saved, not again at every step
            return [WorkspaceNotSaved(after_step=after_step, reason=reason)]
        self._remember(key, scan, archive.sha256)
        if archive.sha256 == current and run.workspace_not_saved is None:
            return []
        ref = ArtifactRef(sha256=archive.sha256, size=len(archive.data), media_type=TAR_MEDIA_TYPE)
        self.artifacts.put(tenant, [Artifact(ref, archive.data)])
        return [_saved(after_step, ref, archive)]

    def _remember(self, key: tuple[str, str], scan: TreeScan, sha256: str) -> None:
        if scan.racy:
            self._known.pop(key, None)
        else:
            self._known[key] = _Known(scan.fingerprint, sha256)

    async def restore(self, tenant: str, mission_id: str, run: MissionRun) -> str | None:
        """Make the run's folder hold its recorded snapshot before its drive goes on.

        Returns why the mission cannot go on here (its last workspace was not saved and this
        replica has none), or None. WorkspaceSnapshotError when the recorded archive is missing,
        altered or refused."""
        if not self.applies(run) or run.finished:
            return None
        return await asyncio.to_thread(self._restore, tenant, mission_id, run)

    def _restore(self, tenant: str, mission_id: str, run: MissionRun) -> str | None:
        root = Path(run.workspace)
        unsaved = run.workspace_not_saved
        if unsaved is not None:
            if root.is_dir() and any(root.iterdir()):
                return None  # the folder it was left in: the only copy there is
            return (
                f"its workspace after step '{unsaved.after_step}' was not saved ({unsaved.reason})"
                " and this executor does not hold it"
            )
        saved = run.workspace_saved
        if saved is None:
            root.mkdir(parents=True, exist_ok=True)
            return None
        scan = scan_tree(root)
        if scan.entries and scan.file_bytes <= self.settings.max_bytes:
            try:
                here: str | None = archive_tree(root, scan, self.settings.max_bytes).sha256
            except (WorkspaceTooLargeError, OSError, ValueError):
                here = None  # what cannot be archived is not the snapshot: restore it
            if here == saved.ref.sha256:
                self._remember((tenant, mission_id), scan, here)
                return None
        try:
            data = verified(saved.ref, self.artifacts.get(tenant, saved.ref.sha256))
        except ValueError as error:
            raise WorkspaceSnapshotError(
                f"mission {tenant}/{mission_id}: its workspace after step '{saved.after_step}'"
                f" cannot be restored: {error}"
            ) from None
        try:
            restore_tree(data, saved.ref.sha256, root)
        except RuntimeError as error:
            raise WorkspaceSnapshotError(f"mission {tenant}/{mission_id}: {error}") from None
        self._known.pop((tenant, mission_id), None)
        return None

    def forget(self, tenant: str, mission_id: str) -> None:
        """Drop what this process knew of a mission's tree (its drive ended here)."""
        self._known.pop((tenant, mission_id), None)


def _unreadable(error: OSError | ValueError) -> str:
    return f"its files cannot be archived: {error}"


def _saved(after_step: str, ref: ArtifactRef, archive: WorkspaceArchive) -> WorkspaceSaved:
    return WorkspaceSaved(
        after_step=after_step,
        archive={"$artifact": ref},
        files=archive.files,
        omitted=archive.omitted,
    )


def workspace_snapshots(environ: Mapping[str, str], store: EventStore) -> WorkspaceSnapshots | None:
    """The snapshots the settings ask for (None when off), archives kept beside `store`'s
    events."""
    settings = SnapshotSettings.from_environ(environ)
    if settings.mode is SnapshotMode.OFF:
        return None
    return WorkspaceSnapshots(artifacts_beside(store), settings)
