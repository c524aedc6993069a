"""What every git step shares: the repository folder, and the git program run confined.

git runs in the OS sandbox like any program, and is told to ignore everything that is not the
repository's own: no system or user config (GIT_CONFIG_NOSYSTEM, GIT_CONFIG_GLOBAL=/dev/null), no
hooks (`core.hooksPath=/dev/null`), no fsmonitor, pager, credential helper or transport, no
repository discovery above the workspace. Files the policy denies are left out of what git adds,
diffs and lists, so a git step reveals no more than a file step could.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.checks import check_path, check_value
from rustchain.domain.policy.git_refs import branch_problem
from rustchain.domain.policy.obligations import Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.confined_runs import base_environment, program_folder, run_confined
from rustchain.steps.support.definition import PARAMETERS
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.sandboxing import ProgramResult

_SAFE_CONFIG = (
    *("core.hooksPath=/dev/null", "core.fsmonitor=false", "core.pager=cat"),
    *("credential.helper=", "protocol.allow=never", "commit.gpgSign=false", "tag.gpgSign=false"),
    *("safe.directory=*", "color.ui=false", "advice.detachedHead=false"),
)


def _valid_branch(name: str) -> str:
    problem = branch_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


Branch = Annotated[str, AfterValidator(_valid_branch)]
"""A branch parameter: a valid ref name, never one that git would read as an option."""


class GitParameters(BaseModel):
    """The repository: a folder of the workspace (RustChain's `path`, default `.`)."""

    model_config = PARAMETERS
    path: Annotated[str, Field(min_length=1)] = "."


def git_argv(*arguments: str) -> list[str]:
    """`git` with the safe configuration, then the arguments."""
    argv = ["git"]
    for setting in _SAFE_CONFIG:
        argv += ["-c", setting]
    return [*argv, *arguments]


def repository(context: StepContext, params: GitParameters, *, write: bool) -> Path:
    """The repository folder, checked against the policy and resolved inside the workspace."""
    return program_folder(context, params.path, write=write)


def check_branch(context: StepContext, branch: str) -> None:
    """The verifier's branch rule, again on the concrete name (also when no verifier ran)."""
    context.enforce(check_value, Sink.GIT_BRANCH, branch)


def _within(pattern: str, prefix: tuple[str, ...]) -> str | None:
    """The part of a workspace-relative glob that applies inside the folder `prefix`, or None
    when it names nothing there (`*/secret` inside `proj` is `secret`; `**/x` stays)."""
    parts = PurePosixPath(pattern.removeprefix("./")).parts
    for index, name in enumerate(prefix):
        if index < len(parts) and parts[index] == "**":
            return "/".join(parts[index:])
        if index >= len(parts) or not fnmatch.fnmatchcase(name, parts[index]):
            return None
    rest = parts[len(prefix) :]
    return "/".join(rest) if rest else None


def excluded_pathspecs(context: StepContext, folder: Path) -> list[str]:
    """Pathspecs leaving out the policy's denied paths (globs relative to the workspace, made
    relative to the repository folder)."""
    prefix = folder.relative_to(context.workspace.resolve()).parts
    specs = []
    for pattern in context.enforced_policy.filesystem.denied_paths:
        inside = _within(pattern, prefix)
        if inside is not None:
            specs += [f":(exclude,glob){inside}", f":(exclude,glob){inside}/**"]
    return specs


def denied_names(context: StepContext, folder: Path, names: Iterable[str]) -> list[str]:
    """The names (relative to the repository folder) the policy denies reading: the check the
    pathspecs approximate, made exactly on what git reports."""
    prefix = PurePosixPath(folder.relative_to(context.workspace.resolve()).as_posix())
    policy = context.enforced_policy
    return [n for n in names if check_path(policy, (prefix / n).as_posix()) is not None]


async def run_git(
    context: StepContext,
    folder: Path,
    arguments: Sequence[str],
    *,
    identity: dict[str, str] | None = None,
) -> ProgramResult:
    """Run `git <arguments>` confined in the repository folder; any status is returned."""
    workspace = context.workspace.resolve()
    env = base_environment(context)
    env.update(
        {
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CEILING_DIRECTORIES": str(workspace.parent),
            "GIT_OPTIONAL_LOCKS": "0",
        }
    )
    env.update(identity or {})
    return await run_confined(context, git_argv(*arguments), folder, env, what="git")


def git_failure(what: str, result: ProgramResult) -> StepRunError:
    """A failed git run as a step error, with what git said."""
    said = (result.stderr or result.stdout).decode("utf-8", errors="replace").strip()[-2000:]
    if "not a git repository" in said:
        said = "the folder is in no git repository of the workspace"
    return StepRunError(f"{what} failed (git status {result.status}): {said}")


def constraints_of(step: PlannedStep, *, write: bool) -> list[Obligation]:
    """The repository folder stays in the workspace; a branch is a valid branch name."""
    parameters = step.parameters
    sink = Sink.PATH_WRITE if write else Sink.PATH_READ
    uses = text_uses(sink, "path", parameters.get("path", "."))
    return uses + text_uses(Sink.GIT_BRANCH, "branch", parameters.get("branch"))
