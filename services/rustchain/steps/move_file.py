"""The `move_file` step: move or rename a file within the workspace."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from rustchain.steps.definition import PARAMETERS, StepDefinition


class MoveFileParameters(BaseModel):
    """From where to where."""

    model_config = PARAMETERS
    source: Annotated[str, Field(min_length=1)]
    destination: Annotated[str, Field(min_length=1)]
    overwrite: bool = False


STEP_TYPE = StepDefinition("move_file", "Move or rename a file", MoveFileParameters)
