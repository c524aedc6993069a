"""The `create_file` step: create a file in the mission's workspace with the given content."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from rustchain.steps.definition import PARAMETERS, StepDefinition


class CreateFileParameters(BaseModel):
    """Where to write, what, and with which permissions."""

    model_config = PARAMETERS
    path: Annotated[str, Field(min_length=1)]
    content: str = ""
    permissions: Annotated[str, Field(pattern=r"^[0-7]{3,4}$")] | None = None
    overwrite: bool = True


STEP_TYPE = StepDefinition(
    "create_file", "Create a file with the given content", CreateFileParameters
)
