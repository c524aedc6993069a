"""The `git_commit` step: stage every change (`git add -A`) and commit it."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation
from rustchain.steps.support.definition import StepDefinition
from rustchain.steps.support.git_runs import (
    GitParameters,
    constraints_of,
    denied_names,
    excluded_pathspecs,
    git_failure,
    repository,
    run_git,
)
from rustchain.steps.support.runtime import StepContext, StepRunError

_SUMMARY = re.compile(r"^\[(?P<branch>\S+)(?: \(root-commit\))? (?P<commit>[0-9a-f]{4,})\]", re.M)


class GitCommitParameters(GitParameters):
    """The message; the author (our addition: RustChain left identity to git's config, which
    the sandbox does not show) as a name and an e-mail address."""

    message: Annotated[str, Field(min_length=1)]
    author_name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    author_email: Annotated[str, Field(min_length=3, max_length=200)] | None = None


def _identity(params: GitCommitParameters) -> dict[str, str]:
    identity = {}
    for role in ("AUTHOR", "COMMITTER"):
        if params.author_name is not None:
            identity[f"GIT_{role}_NAME"] = params.author_name
        if params.author_email is not None:
            identity[f"GIT_{role}_EMAIL"] = params.author_email
    return identity


async def git_commit(params: GitCommitParameters, context: StepContext) -> dict[str, Any]:
    """Stage everything but the files the policy denies, commit; RustChain's `committed` and
    `message`, plus the branch and the new commit's short id."""
    folder = repository(context, params, write=True)
    for text in (params.message, params.author_name or "", params.author_email or ""):
        if "\0" in text:
            raise StepRunError("the message and author may not hold a NUL byte")
    pathspecs = excluded_pathspecs(context, folder)
    added = await run_git(context, folder, ["add", "-A", "--", ".", *pathspecs])
    if added.status != 0:
        raise git_failure("git add", added)
    staged = await run_git(
        context, folder, ["diff", "--cached", "--no-renames", "--name-only", "-z"]
    )
    names = staged.stdout.decode("utf-8", errors="replace").split("\0")
    denied = denied_names(context, folder, [n for n in names if n])
    if denied:  # what the pathspecs could not express: unstaged again, never committed
        literal = [f":(literal){name}" for name in denied]
        await run_git(context, folder, ["reset", "-q", "--", *literal])
    committed = await run_git(
        context, folder, ["commit", "--no-verify", "-m", params.message], identity=_identity(params)
    )
    if committed.status != 0:
        said = (committed.stdout + committed.stderr).decode("utf-8", errors="replace")
        if "nothing to commit" in said or "no changes added" in said:
            raise StepRunError("git commit failed: nothing to commit")
        if "Author identity unknown" in said or "empty ident" in said:
            raise StepRunError(
                "git commit failed: no author; give 'author_name' and 'author_email', or set "
                "user.name and user.email in the repository's own config"
            )
        raise git_failure("git commit", committed)
    summary = _SUMMARY.search(committed.stdout.decode("utf-8", errors="replace"))
    return {
        "committed": True,
        "message": params.message,
        "branch": summary["branch"] if summary else None,
        "commit": summary["commit"] if summary else None,
    }


STEP_TYPE = StepDefinition(
    "git_commit", "Commit every change of a git repository", GitCommitParameters, run=git_commit
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The repository folder stays in the workspace and outside denied and read-only paths."""
    return constraints_of(step, write=True)


CONSTRAINTS = constraints
