"""The `delete_file` step: delete a file in the workspace."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext
from rustchain.steps.support.workspace_files import delete_file as delete_beneath


class DeleteFileParameters(BaseModel):
    """The file to delete. A missing file is no error (`existed: false`), as in RustChain, unless
    `missing_ok: false`."""

    model_config = PARAMETERS
    path: Annotated[str, Field(min_length=1)]
    missing_ok: bool = True


async def delete_file(params: DeleteFileParameters, context: StepContext) -> dict[str, object]:
    """Delete one file (never a directory; a symbolic link itself, never its target)."""
    path, deleted = delete_beneath(context, params.path, missing_ok=params.missing_ok)
    return {"path": path, "existed": deleted, "deleted": deleted}


STEP_TYPE = StepDefinition("delete_file", "Delete a file", DeleteFileParameters, run=delete_file)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The file deleted must stay in the workspace, outside denied and read-only paths."""
    return text_uses(Sink.PATH_WRITE, "path", step.parameters.get("path"))


CONSTRAINTS = constraints
