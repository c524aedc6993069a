"""The `git_diff` step: the repository's unstaged (or, with `staged`, staged) changes."""

from __future__ import annotations

from typing import Any

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation
from rustchain.steps.support.definition import StepDefinition
from rustchain.steps.support.git_runs import (
    GitParameters,
    constraints_of,
    excluded_pathspecs,
    git_failure,
    repository,
    run_git,
)
from rustchain.steps.support.runtime import StepContext


class GitDiffParameters(GitParameters):
    """The repository folder; `staged` (our addition) diffs the index against HEAD instead."""

    staged: bool = False


async def git_diff(params: GitDiffParameters, context: StepContext) -> dict[str, Any]:
    """RustChain's `diff` text and `has_changes`; no external diff program or text conversion
    runs, and files the policy denies are left out."""
    folder = repository(context, params, write=False)
    arguments = ["diff", "--no-ext-diff", "--no-textconv", "--no-color"]
    if params.staged:
        arguments.append("--cached")
    arguments += ["--", ".", *excluded_pathspecs(context, folder)]
    result = await run_git(context, folder, arguments)
    if result.status != 0:
        raise git_failure("git diff", result)
    text = result.stdout.decode("utf-8", errors="replace")
    return {"diff": text, "has_changes": bool(text.strip())}


STEP_TYPE = StepDefinition(
    "git_diff", "Show a git repository's changes", GitDiffParameters, run=git_diff
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The repository folder stays in the workspace and outside denied paths."""
    return constraints_of(step, write=False)


CONSTRAINTS = constraints
