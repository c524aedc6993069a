"""The `file_search` step: find files by name pattern and, optionally, by the text they contain."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from rustchain.steps.definition import PARAMETERS, StepDefinition


class FileSearchParameters(BaseModel):
    """Where to look, which names (glob) and which text."""

    model_config = PARAMETERS
    path: str = "."
    pattern: Annotated[str, Field(min_length=1)] = "*"
    contains: str | None = None
    max_results: Annotated[int, Field(ge=1)] = 1000


STEP_TYPE = StepDefinition("file_search", "Find files by name and content", FileSearchParameters)
