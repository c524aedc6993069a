"""The `git_branch` step: create a branch and (as RustChain did) switch to it."""

from __future__ import annotations

from typing import Any

from rustchain.domain.plans.plan import PlannedStep
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


class GitBranchParameters(GitParameters):
    """The new branch's name; `switch: false` (our addition) creates it without switching."""

    branch: Branch
    switch: bool = True


async def git_branch(params: GitBranchParameters, context: StepContext) -> dict[str, Any]:
    """RustChain's `branch` and `created` (and whether the work tree switched to it)."""
    check_branch(context, params.branch)
    folder = repository(context, params, write=True)
    if params.switch:
        arguments = ["checkout", "-b", params.branch]
    else:
        arguments = ["branch", "--end-of-options", params.branch]
    result = await run_git(context, folder, arguments)
    if result.status != 0:
        raise git_failure(f"creating branch '{params.branch}'", result)
    return {"branch": params.branch, "created": True, "switched": params.switch}


STEP_TYPE = StepDefinition(
    "git_branch", "Create a git branch and switch to it", GitBranchParameters, run=git_branch
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The repository folder stays in the workspace; the branch is a valid branch name."""
    return constraints_of(step, write=True)


CONSTRAINTS = constraints
