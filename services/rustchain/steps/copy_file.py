"""The `copy_file` step: copy a file within the workspace."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from rustchain.steps.definition import PARAMETERS, StepDefinition


class CopyFileParameters(BaseModel):
    """From where to where."""

    model_config = PARAMETERS
    source: Annotated[str, Field(min_length=1)]
    destination: Annotated[str, Field(min_length=1)]
    overwrite: bool = True


STEP_TYPE = StepDefinition("copy_file", "Copy a file", CopyFileParameters)
