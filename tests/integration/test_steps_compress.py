"""compress against real folders: archives that can be read back, and what is refused."""

from __future__ import annotations

import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from rustchain.domain.policy.model import FilesystemPolicy, Policy
from rustchain.steps.support.runtime import PolicyRefusedError, StepRunError, WorkspaceEscapeError
from tests.integration.step_run_helpers import run_step


def _tree(workspace: Path) -> None:
    (workspace / "site" / "css").mkdir(parents=True)
    (workspace / "site" / "index.html").write_text("<h1>hi</h1>")
    (workspace / "site" / "css" / "a.css").write_text("a{}")
    (workspace / "site" / ".env").write_text("TOKEN=secret")
    (workspace / "site" / ".git").mkdir()
    (workspace / "site" / ".git" / "config").write_text("[core]")


@pytest.mark.parametrize("kind", ["tar", "tar.gz"])
def test_tar_archives_hold_the_folder_without_denied_files(tmp_path: Path, kind: str) -> None:
    _tree(tmp_path)

    output = run_step(
        "compress", tmp_path, source="site", destination=f"out/site.{kind}", format=kind
    )

    assert output["compressed"] is True and output["files"] == 2
    assert sorted(output["skipped"]) == ["site/.env", "site/.git"]
    with tarfile.open(tmp_path / "out" / f"site.{kind}") as archive:
        assert sorted(archive.getnames()) == ["css", "css/a.css", "index.html"]
        extracted = archive.extractfile("css/a.css")
        assert extracted is not None and extracted.read() == b"a{}"


def test_zip_archives_hold_files_only_and_not_the_archive_itself(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "site" / "site.zip").write_text("an older archive")

    run_step("compress", tmp_path, source="site", destination="site/site.zip", format="zip")

    with zipfile.ZipFile(tmp_path / "site" / "site.zip") as archive:
        assert sorted(archive.namelist()) == ["css/a.css", "index.html"]
        assert archive.read("index.html") == b"<h1>hi</h1>"


def test_a_link_in_the_folder_is_refused_and_nothing_outside_is_archived(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "site").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("outside")
    os.symlink(tmp_path / "secret.txt", workspace / "site" / "innocent.txt")

    with pytest.raises(StepRunError, match=r"symbolic link 'site/innocent\.txt'"):
        run_step("compress", workspace, source="site", destination="a.tar")
    if (workspace / "a.tar").exists():
        assert b"outside" not in (workspace / "a.tar").read_bytes()


def test_the_bytes_archived_are_bounded(tmp_path: Path) -> None:
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "a.bin").write_bytes(b"x" * 5000)

    with pytest.raises(StepRunError, match=r"more than max_bytes \(4096\)"):
        run_step(
            "compress", tmp_path, source="big", destination="a.zip", format="zip", max_bytes=4096
        )


def test_source_and_destination_stay_in_the_workspace_and_the_policy(tmp_path: Path) -> None:
    _tree(tmp_path)

    with pytest.raises(WorkspaceEscapeError):
        run_step("compress", tmp_path, source="..", destination="a.tar")
    with pytest.raises(WorkspaceEscapeError):
        run_step("compress", tmp_path, source="site", destination="../a.tar")
    read_only = Policy(filesystem=FilesystemPolicy(read_only_paths=["releases/**"]))
    with pytest.raises(PolicyRefusedError, match=r"\[filesystem\.read_only\]"):
        run_step(
            "compress", tmp_path, policy=read_only, source="site", destination="releases/a.tar"
        )
    with pytest.raises(StepRunError, match="format"):
        run_step("compress", tmp_path, source="site", destination="a.7z", format="7z")
    assert not (tmp_path / "releases").exists()


def test_a_link_as_destination_is_not_followed(tmp_path: Path) -> None:
    _tree(tmp_path)
    target = tmp_path.parent / f"{tmp_path.name}-victim"
    target.write_text("keep")
    os.symlink(target, tmp_path / "a.tar")

    with pytest.raises(StepRunError):
        run_step("compress", tmp_path, source="site", destination="a.tar")
    assert target.read_text() == "keep"
