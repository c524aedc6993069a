"""The `read_file` step: read a text file from the workspace; its content is the step's output."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from rustchain.steps.definition import PARAMETERS, StepDefinition


class ReadFileParameters(BaseModel):
    """The file, and how much of it at most."""

    model_config = PARAMETERS
    path: Annotated[str, Field(min_length=1)]
    max_bytes: Annotated[int, Field(ge=1)] = 10 * 1024 * 1024


STEP_TYPE = StepDefinition("read_file", "Read a text file", ReadFileParameters)
