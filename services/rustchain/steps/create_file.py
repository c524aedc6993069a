"""The `create_file` step: create a file in the mission's workspace with the given content."""

from __future__ import annotations

import stat
from typing import Annotated

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.workspace_files import write_file


class CreateFileParameters(BaseModel):
    """Where to write, what, and with which permissions."""

    model_config = PARAMETERS
    path: Annotated[str, Field(min_length=1)]
    content: str = ""
    permissions: Annotated[str, Field(pattern=r"^[0-7]{3,4}$")] | None = None
    overwrite: bool = True


async def create_file(params: CreateFileParameters, context: StepContext) -> dict[str, object]:
    """Write the file (creating its folders); refuse to replace one unless `overwrite`."""
    data = params.content.encode("utf-8")
    mode = None if params.permissions is None else int(params.permissions, 8)
    if mode is not None and mode & (stat.S_ISUID | stat.S_ISGID):
        # A set-id file owned by the executor's user would run as that user for anyone.
        raise StepRunError(
            f"permissions '{params.permissions}' may not set the setuid or setgid bit"
        )
    written = write_file(context, params.path, data, overwrite=params.overwrite, mode=mode)
    return {"path": written, "bytes": len(data)}


STEP_TYPE = StepDefinition(
    "create_file", "Create a file with the given content", CreateFileParameters, run=create_file
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The file written must stay in the workspace, outside denied and read-only paths."""
    return text_uses(Sink.PATH_WRITE, "path", step.parameters.get("path"))


CONSTRAINTS = constraints
