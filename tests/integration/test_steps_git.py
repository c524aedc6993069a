"""The git steps against real repositories made by the tests, git confined in the sandbox."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest

from rustchain.domain.policy.model import FilesystemPolicy, Policy
from rustchain.steps.git_branch import GitBranchParameters, git_branch
from rustchain.steps.support.runtime import PolicyRefusedError, StepRunError, WorkspaceEscapeError
from tests.integration.sandbox_helpers import MECHANISMS, sandboxed_context
from tests.integration.step_run_helpers import run_step

AUTHOR = {"author_name": "Test", "author_email": "test@example.org"}


def git(repository: Path, *arguments: str) -> str:
    """Run git outside the sandbox, as the test's own tool."""
    done = subprocess.run(
        ["git", "-C", str(repository), *arguments], capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    folder.mkdir()
    git(folder, "init", "-q", "-b", "main")
    (folder / "a.txt").write_text("one\n")
    return folder


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_commit_branch_diff_merge_and_status_work_on_a_real_repository(
    repository: Path, mechanism: str
) -> None:
    (repository / ".env").write_text("TOKEN=secret\n")
    run = functools.partial(run_step, mechanism=mechanism)

    assert run("git_status", repository)["entries"] == [
        {"index": "?", "worktree": "?", "path": "a.txt"}
    ]
    first = run("git_commit", repository, message="first", **AUTHOR)
    assert first["committed"] and first["branch"] == "main"
    assert run("git_branch", repository, branch="feature/x")["created"] is True
    (repository / "a.txt").write_text("two\n")
    diff = run("git_diff", repository)
    assert diff["has_changes"] and "+two" in diff["diff"]
    run("git_commit", repository, message="second", **AUTHOR)
    git(repository, "checkout", "-q", "main")
    assert run("git_merge", repository, branch="feature/x") == {
        "merged_branch": "feature/x",
        "success": True,
    }

    assert (repository / "a.txt").read_text() == "two\n"
    assert git(repository, "log", "--format=%s %an").splitlines() == ["second Test", "first Test"]
    # The denied .env was never staged, and status does not reveal it.
    assert ".env" not in git(repository, "ls-files")
    assert run_step("git_status", repository)["clean"] is True


def test_denied_files_of_a_repository_in_a_subfolder_are_never_staged_or_shown(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "ws"
    project = workspace / "proj"
    project.mkdir(parents=True)
    git(project, "init", "-q", "-b", "main")
    (project / "code.py").write_text("x = 1\n")
    (project / "secret.txt").write_text("s3cret\n")
    (project / "conf").mkdir()
    (project / "conf" / ".env").write_text("TOKEN=1\n")
    policy = Policy(filesystem=FilesystemPolicy(denied_paths=["*/secret.txt", "**/.env"]))

    status = run_step("git_status", workspace, policy=policy, path="proj")
    run_step("git_commit", workspace, policy=policy, path="proj", message="m", **AUTHOR)

    assert [e["path"] for e in status["entries"]] == ["code.py"]
    assert git(project, "ls-files").split() == ["code.py"]


def test_hooks_of_the_repository_never_run(repository: Path) -> None:
    hooks = repository / "my-hooks"
    hooks.mkdir()
    for folder in (hooks, repository / ".git" / "hooks"):
        hook = folder / "pre-commit"
        hook.write_text(f"#!/bin/sh\ntouch {repository}/hook-ran\n")
        hook.chmod(0o755)
    git(repository, "config", "core.hooksPath", "my-hooks")

    run_step("git_commit", repository, message="m", **AUTHOR)

    assert not (repository / "hook-ran").exists()


def test_no_git_config_from_outside_the_workspace_is_read(
    repository: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "global.gitconfig"
    outside.write_text("[user]\n\tname = Outside\n\temail = outside@example.org\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(outside))
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".gitconfig").write_text(outside.read_text())

    with pytest.raises(StepRunError, match="no author; give 'author_name'"):
        run_step("git_commit", repository, message="m")
    git(repository, "config", "user.name", "Inside")
    git(repository, "config", "user.email", "inside@example.org")
    run_step("git_commit", repository, message="m")
    assert git(repository, "log", "--format=%an") == "Inside\n"


@pytest.mark.parametrize(
    "branch", ["--upload-pack=touch pwned", "-b", "a..b", "x y", "@{-1}", "x.lock", ""]
)
def test_branch_names_git_would_misread_are_refused(repository: Path, branch: str) -> None:
    with pytest.raises(StepRunError, match=r"not a valid git branch name|at least 1"):
        run_step("git_branch", repository, branch=branch)
    with pytest.raises(StepRunError, match=r"not a valid git branch name|at least 1"):
        run_step("git_merge", repository, branch=branch)


def test_the_runner_refuses_an_option_as_branch_even_past_parameter_validation(
    repository: Path,
) -> None:
    import asyncio

    params = GitBranchParameters.model_construct(path=".", branch="--help", switch=True)
    with pytest.raises(PolicyRefusedError, match=r"\[git\.branch\]"):
        asyncio.run(git_branch(params, sandboxed_context(repository)))


def test_a_conflicting_merge_is_aborted(repository: Path) -> None:
    run_step("git_commit", repository, message="base", **AUTHOR)
    run_step("git_branch", repository, branch="other")
    (repository / "a.txt").write_text("other\n")
    run_step("git_commit", repository, message="other", **AUTHOR)
    git(repository, "checkout", "-q", "main")
    (repository / "a.txt").write_text("main\n")
    run_step("git_commit", repository, message="main", **AUTHOR)

    with pytest.raises(StepRunError, match="merging branch 'other' \\(aborted\\)"):
        run_step("git_merge", repository, branch="other")

    assert (repository / "a.txt").read_text() == "main\n"
    assert not (repository / ".git" / "MERGE_HEAD").exists()


def test_a_merge_that_would_change_a_read_only_path_is_refused_before_it_runs(
    repository: Path,
) -> None:
    run_step("git_commit", repository, message="base", **AUTHOR)
    run_step("git_branch", repository, branch="docs-change")
    (repository / "docs").mkdir()
    (repository / "docs" / "policy.md").write_text("changed\n")
    run_step("git_commit", repository, message="docs", **AUTHOR)
    git(repository, "checkout", "-q", "main")
    policy = Policy(filesystem=FilesystemPolicy(read_only_paths=["docs/**"]))

    with pytest.raises(PolicyRefusedError, match=r"\[filesystem\.read_only\]"):
        run_step("git_merge", repository, policy=policy, branch="docs-change")
    assert not (repository / "docs").exists()


def test_a_merge_that_moves_a_read_only_file_away_is_refused(repository: Path) -> None:
    (repository / "docs").mkdir()
    (repository / "docs" / "keep.md").write_text("kept\n")
    run_step("git_commit", repository, message="base", **AUTHOR)
    run_step("git_branch", repository, branch="move")
    git(repository, "mv", "docs/keep.md", "moved.md")
    run_step("git_commit", repository, message="move", **AUTHOR)
    git(repository, "checkout", "-q", "main")
    policy = Policy(filesystem=FilesystemPolicy(read_only_paths=["docs/**"]))

    with pytest.raises(PolicyRefusedError, match=r"\[filesystem\.read_only\].*docs/keep\.md"):
        run_step("git_merge", repository, policy=policy, branch="move")
    assert (repository / "docs" / "keep.md").read_text() == "kept\n"


@pytest.mark.parametrize(
    ("step_type", "others"),
    [
        ("git_commit", {"message": "m"}),
        ("git_branch", {"branch": "b"}),
        ("git_merge", {"branch": "b"}),
        ("git_status", {}),
        ("git_diff", {}),
    ],
)
def test_every_git_step_refuses_a_folder_outside_with_no_verifier(
    repository: Path, step_type: str, others: dict[str, str]
) -> None:
    outside = repository.parent / "other"
    git(repository.parent, "init", "-q", str(outside))

    with pytest.raises(WorkspaceEscapeError):
        run_step(step_type, repository, path="../other", **others)
    assert git(outside, "status", "--porcelain") == ""


def test_git_steps_refuse_folders_outside_the_workspace_or_denied(repository: Path) -> None:
    with pytest.raises(WorkspaceEscapeError):
        run_step("git_status", repository, path="..")
    with pytest.raises(PolicyRefusedError, match=r"\[filesystem\.denied\]"):
        run_step("git_diff", repository, policy=Policy(), path=".git")
    (repository / "plain").mkdir()
    git_free = repository / "plain"
    with pytest.raises(StepRunError, match="in no git repository of the workspace"):
        run_step("git_status", git_free)
