"""The `move_file` step: move or rename a file within the workspace."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext
from rustchain.steps.support.workspace_moves import relocate


class MoveFileParameters(BaseModel):
    """From where to where."""

    model_config = PARAMETERS
    source: Annotated[str, Field(min_length=1)]
    destination: Annotated[str, Field(min_length=1)]
    overwrite: bool = False


async def move_file(params: MoveFileParameters, context: StepContext) -> dict[str, object]:
    """Move a file within the workspace."""
    return relocate(
        context,
        params.source,
        params.destination,
        overwrite=params.overwrite,
        move=True,
    )


STEP_TYPE = StepDefinition("move_file", "Move or rename a file", MoveFileParameters, run=move_file)


def constraints(step: PlannedStep) -> list[Obligation]:
    """Moving removes the source and writes the destination: both are writes."""
    parameters = step.parameters
    return [
        *text_uses(Sink.PATH_WRITE, "source", parameters.get("source")),
        *text_uses(Sink.PATH_WRITE, "destination", parameters.get("destination")),
    ]


CONSTRAINTS = constraints
