"""The `copy_file` step: copy a file within the workspace."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext
from rustchain.steps.support.workspace_moves import relocate


class CopyFileParameters(BaseModel):
    """From where to where."""

    model_config = PARAMETERS
    source: Annotated[str, Field(min_length=1)]
    destination: Annotated[str, Field(min_length=1)]
    overwrite: bool = True


async def copy_file(params: CopyFileParameters, context: StepContext) -> dict[str, object]:
    """Copy a file within the workspace."""
    return relocate(
        context,
        params.source,
        params.destination,
        overwrite=params.overwrite,
        move=False,
    )


STEP_TYPE = StepDefinition("copy_file", "Copy a file", CopyFileParameters, run=copy_file)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The source is read and the destination written, both inside the workspace."""
    parameters = step.parameters
    return [
        *text_uses(Sink.PATH_READ, "source", parameters.get("source")),
        *text_uses(Sink.PATH_WRITE, "destination", parameters.get("destination")),
    ]


CONSTRAINTS = constraints
