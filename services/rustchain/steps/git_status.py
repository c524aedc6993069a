"""The `git_status` step: the working tree's changes (`git status --porcelain`)."""

from __future__ import annotations

from typing import Any

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
from rustchain.steps.support.runtime import StepContext


class GitStatusParameters(GitParameters):
    """The repository folder."""


def entries(porcelain: str) -> list[dict[str, str]]:
    """Each line of `--porcelain` output as its index and working-tree states and path."""
    return [
        {"index": line[0], "worktree": line[1], "path": line[3:]}
        for line in porcelain.splitlines()
        if len(line) > 3
    ]


async def git_status(params: GitStatusParameters, context: StepContext) -> dict[str, Any]:
    """RustChain's `status` text and `clean`, plus each entry parsed. Unlike RustChain, a folder
    that is no repository is an error rather than `clean: true`."""
    folder = repository(context, params, write=False)
    pathspecs = excluded_pathspecs(context, folder)
    result = await run_git(context, folder, ["status", "--porcelain", "--", ".", *pathspecs])
    if result.status != 0:
        raise git_failure("git status", result)
    found = entries(result.stdout.decode("utf-8", errors="replace"))
    denied = set(denied_names(context, folder, [e["path"] for e in found]))
    kept = [e for e in found if e["path"] not in denied]
    text = "".join(f"{e['index']}{e['worktree']} {e['path']}\n" for e in kept)
    return {"status": text, "clean": not kept, "entries": kept}


STEP_TYPE = StepDefinition(
    "git_status", "List a git repository's changes", GitStatusParameters, run=git_status
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The repository folder stays in the workspace and outside denied paths."""
    return constraints_of(step, write=False)


CONSTRAINTS = constraints
