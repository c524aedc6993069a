"""The `git_merge` step: merge a branch into the current one, or leave the repository as it was."""

from __future__ import annotations

from typing import Any

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.checks import check_path
from rustchain.domain.policy.obligations import Obligation
from rustchain.steps.support.definition import StepDefinition
from rustchain.steps.support.git_runs import (
    Branch,
    GitParameters,
    check_branch,
    constraints_of,
    git_failure,
    repository,
    run_git,
)
from rustchain.steps.support.runtime import StepContext


class GitMergeParameters(GitParameters):
    """The branch to merge into the current one."""

    branch: Branch


async def git_merge(params: GitMergeParameters, context: StepContext) -> dict[str, Any]:
    """Merge without an editor; RustChain's `merged_branch` and `success`. The files the merge
    would change are checked against the policy first; a conflict aborts the merge (RustChain
    left the repository mid-merge)."""
    check_branch(context, params.branch)
    folder = repository(context, params, write=True)
    # Every path the merge may touch: --no-renames lists a file moved away under its old name.
    compare = ["diff", "--no-ext-diff", "--no-renames", "--name-only", "-z"]
    changed = await run_git(context, folder, [*compare, f"HEAD...{params.branch}", "--"])
    if changed.status != 0:
        raise git_failure(f"comparing with branch '{params.branch}'", changed)
    prefix = folder.relative_to(context.workspace.resolve())
    for name in changed.stdout.decode("utf-8", errors="replace").split("\0"):
        if name:
            context.enforce(check_path, (prefix / name).as_posix(), write=True)
    merged = await run_git(
        context, folder, ["merge", "--no-edit", "--end-of-options", params.branch]
    )
    if merged.status != 0:
        await run_git(context, folder, ["merge", "--abort"])
        raise git_failure(f"merging branch '{params.branch}' (aborted)", merged)
    return {"merged_branch": params.branch, "success": True}


STEP_TYPE = StepDefinition(
    "git_merge", "Merge a git branch into the current one", GitMergeParameters, run=git_merge
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The repository folder stays in the workspace; the branch is a valid branch name."""
    return constraints_of(step, write=True)


CONSTRAINTS = constraints
