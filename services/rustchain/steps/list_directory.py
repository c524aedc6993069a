"""The `list_directory` step: list a directory of the workspace."""

from __future__ import annotations

import fnmatch

from pydantic import BaseModel

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.checks import check_path
from rustchain.domain.policy.obligations import Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext
from rustchain.steps.support.workspace_walk import list_entries


class ListDirectoryParameters(BaseModel):
    """The directory, optionally recursive and filtered by a glob pattern."""

    model_config = PARAMETERS
    path: str = "."
    recursive: bool = False
    pattern: str | None = None


async def list_directory(
    params: ListDirectoryParameters, context: StepContext
) -> list[dict[str, object]]:
    """Entries of a workspace directory, sorted, optionally recursive and filtered; a symbolic
    link is listed as a `link` (size 0), never followed."""
    listed = []
    for entry in list_entries(context, params.path, recursive=params.recursive):
        if params.pattern is not None and not fnmatch.fnmatch(entry.name, params.pattern):
            continue
        context.check(check_path, entry.path, write=False)
        listed.append({"path": entry.path, "type": entry.kind, "size": entry.size})
    return listed


STEP_TYPE = StepDefinition(
    "list_directory", "List a directory", ListDirectoryParameters, run=list_directory
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The directory listed must stay in the workspace and outside denied paths."""
    return text_uses(Sink.PATH_READ, "path", step.parameters.get("path", "."))


CONSTRAINTS = constraints
