"""The `parse_json` step: parse JSON text (or a workspace file) into structured output."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from rustchain.steps.definition import PARAMETERS, StepDefinition


class ParseJsonParameters(BaseModel):
    """The text to parse, or the path of a file holding it."""

    model_config = PARAMETERS
    content: str | None = None
    path: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ParseJsonParameters:
        if (self.content is None) == (self.path is None):
            raise ValueError("a parse_json step needs exactly one of 'content' or 'path'")
        return self


STEP_TYPE = StepDefinition("parse_json", "Parse JSON text", ParseJsonParameters)
