"""`RUSTCHAIN_WORKSPACE_SNAPSHOTS` as a user sets it: on, a run records its workspace; a value it
does not know is one line and exit 2, before anything runs."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_run import rustchain


def test_a_run_with_snapshots_on_records_its_workspace(tmp_path: Path) -> None:
    result = rustchain(
        tmp_path, "run", "missions/hello.yaml", RUSTCHAIN_WORKSPACE_SNAPSHOTS="artifact"
    )
    assert result.returncode == 0, result.stderr
    assert "WorkspaceSaved" in result.stdout


def test_an_unknown_snapshot_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = rustchain(tmp_path, "run", "missions/hello.yaml", RUSTCHAIN_WORKSPACE_SNAPSHOTS="nfs")
    assert result.returncode == 2
    assert result.stderr == (
        "rustchain: RUSTCHAIN_WORKSPACE_SNAPSHOTS must be off or artifact, not 'nfs'\n"
    )
    assert not (tmp_path / "workspaces").exists()
