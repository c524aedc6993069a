"""A workspace as a deterministic tar and back; hostile archives are refused, nothing extracted."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from rustchain.domain.plans.artifacts import sha256_of
from rustchain.executor.workspace_snapshots import (
    DEFAULT_MAX_BYTES,
    SnapshotMode,
    SnapshotSettingError,
    SnapshotSettings,
)
from rustchain.platform.storage.workspace_archive import (
    WorkspaceArchive,
    WorkspaceArchiveError,
    WorkspaceTooLargeError,
    archive_tree,
    restore_tree,
    scan_tree,
)

LIMIT = 1_000_000


def _archive(root: Path, limit: int = LIMIT) -> WorkspaceArchive:
    return archive_tree(root, scan_tree(root), limit)


def _workspace(root: Path) -> Path:
    (root / "src" / "deep").mkdir(parents=True)
    (root / "notes.txt").write_text("alpha\n")
    (root / "src" / "main.py").write_text("print('hi')\n")
    (root / "src" / "deep" / "data.bin").write_bytes(bytes(range(256)) * 10)
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "empty").mkdir()
    (root / "latest").symlink_to("src/main.py")
    return root


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member, content in members:
            member.size = len(content)
            tar.addfile(member, io.BytesIO(content))
    return buffer.getvalue()


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type, member.linkname = tarfile.SYMTYPE, target
    return member


def test_a_restored_workspace_holds_the_same_files_and_archives_to_the_same_bytes(
    tmp_path: Path,
) -> None:
    saved = _archive(_workspace(tmp_path / "a"))
    restore_tree(saved.data, saved.sha256, tmp_path / "b" / "ws")
    restored = tmp_path / "b" / "ws"
    assert (restored / "notes.txt").read_text() == "alpha\n"
    assert (restored / "src" / "deep" / "data.bin").read_bytes() == bytes(range(256)) * 10
    assert os.access(restored / "run.sh", os.X_OK)
    assert (restored / "empty").is_dir()
    assert os.readlink(restored / "latest") == "src/main.py"
    assert (saved.files, saved.omitted) == (4, 0)
    assert _archive(restored).sha256 == saved.sha256
    # Nothing is left beside it: the staging folder became the workspace.
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["ws"]


def test_the_same_tree_archives_to_the_same_bytes_and_a_change_to_other_bytes(
    tmp_path: Path,
) -> None:
    root = _workspace(tmp_path / "ws")
    first = _archive(root)
    assert _archive(root).data == first.data
    (root / "notes.txt").write_text("alphb\n")
    assert _archive(root).sha256 != first.sha256


def test_a_restore_replaces_what_the_folder_held(tmp_path: Path) -> None:
    saved = _archive(_workspace(tmp_path / "a"))
    target = tmp_path / "b"
    target.mkdir()
    (target / "stale.txt").write_text("from an older run")
    restore_tree(saved.data, saved.sha256, target)
    assert not (target / "stale.txt").exists()
    assert (target / "notes.txt").read_text() == "alpha\n"


def test_entries_a_restore_would_refuse_are_left_out_and_counted(tmp_path: Path) -> None:
    root = _workspace(tmp_path / "ws")
    (root / "passwd").symlink_to("/etc/passwd")
    (root / "up").symlink_to("../../outside")
    os.mkfifo(root / "pipe")
    saved = _archive(root)
    assert saved.omitted == 3
    with tarfile.open(fileobj=io.BytesIO(saved.data)) as tar:
        assert {"passwd", "up", "pipe"}.isdisjoint(tar.getnames())


def test_a_workspace_over_the_limit_is_refused_naming_the_setting(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "big").write_bytes(b"x" * 5000)
    with pytest.raises(WorkspaceTooLargeError, match="5,000 bytes, over the snapshot limit of"):
        _archive(root, limit=4096)


def test_a_listing_is_racy_right_after_a_write_so_its_times_are_not_trusted(
    tmp_path: Path,
) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "fresh").write_text("just written")
    assert scan_tree(root).racy
    old = 1_000_000_000
    os.utime(root / "fresh", (old, old))
    # ctime still moved just now: only a change older than the margin vouches for the content.
    assert scan_tree(root).racy


@pytest.mark.parametrize(
    ("member", "refusal"),
    [
        (_symlink("escape", "/etc/passwd"), "escape"),
        (_symlink("escape", "../../../etc"), "escape"),
        (tarfile.TarInfo("../outside.txt"), "outside.txt"),
        (tarfile.TarInfo("/etc/cron.d/evil"), "evil"),
    ],
    ids=["symlink-absolute", "symlink-up", "dot-dot", "absolute-path"],
)
def test_hostile_archives_are_refused_and_leave_the_workspace_as_it_was(
    tmp_path: Path, member: tarfile.TarInfo, refusal: str
) -> None:
    target = tmp_path / "sandbox" / "ws"
    target.mkdir(parents=True)
    (target / "mine.txt").write_text("kept")
    data = _tar((tarfile.TarInfo("fine.txt"), b"ok"), (member, b"evil"))
    with pytest.raises(WorkspaceArchiveError, match=f"was refused: .*{refusal}"):
        restore_tree(data, sha256_of(data), target)
    assert (target / "mine.txt").read_text() == "kept"
    assert not (target / "fine.txt").exists()
    assert sorted(p.name for p in (tmp_path / "sandbox").iterdir()) == ["ws"]
    assert not (tmp_path / "outside.txt").exists()


def test_a_device_file_in_an_archive_is_refused(tmp_path: Path) -> None:
    device = tarfile.TarInfo("null")
    device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 3
    data = _tar((device, b""))
    with pytest.raises(WorkspaceArchiveError, match="special file"):
        restore_tree(data, sha256_of(data), tmp_path / "ws")


def test_an_archive_that_does_not_hash_to_the_recorded_sha256_is_not_opened(
    tmp_path: Path,
) -> None:
    saved = _archive(_workspace(tmp_path / "a"))
    altered = saved.data.replace(b"alpha", b"omega")
    with pytest.raises(WorkspaceArchiveError, match=f"not to the recorded {saved.sha256}"):
        restore_tree(altered, saved.sha256, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_snapshot_settings_default_to_off_and_refuse_other_values_in_one_line() -> None:
    assert SnapshotSettings.from_environ({}) == SnapshotSettings(
        SnapshotMode.OFF, DEFAULT_MAX_BYTES
    )
    on = {
        "RUSTCHAIN_WORKSPACE_SNAPSHOTS": "artifact",
        "RUSTCHAIN_WORKSPACE_SNAPSHOT_MAX_BYTES": "5",
    }
    assert SnapshotSettings.from_environ(on) == SnapshotSettings(SnapshotMode.ARTIFACT, 5)
    with pytest.raises(SnapshotSettingError, match="must be off or artifact, not 'nfs'"):
        SnapshotSettings.from_environ({"RUSTCHAIN_WORKSPACE_SNAPSHOTS": "nfs"})
    with pytest.raises(SnapshotSettingError, match="positive whole number of bytes, not '-1'"):
        SnapshotSettings.from_environ({"RUSTCHAIN_WORKSPACE_SNAPSHOT_MAX_BYTES": "-1"})
