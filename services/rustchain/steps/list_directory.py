"""The `list_directory` step: list a directory of the workspace."""

from __future__ import annotations

from pydantic import BaseModel

from rustchain.steps.definition import PARAMETERS, StepDefinition


class ListDirectoryParameters(BaseModel):
    """The directory, optionally recursive and filtered by a glob pattern."""

    model_config = PARAMETERS
    path: str = "."
    recursive: bool = False
    pattern: str | None = None


STEP_TYPE = StepDefinition("list_directory", "List a directory", ListDirectoryParameters)
