"""The `parse_yaml` step: parse YAML text (or a workspace file) into structured output."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from rustchain.steps.definition import PARAMETERS, StepDefinition


class ParseYamlParameters(BaseModel):
    """The text to parse, or the path of a file holding it."""

    model_config = PARAMETERS
    content: str | None = None
    path: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ParseYamlParameters:
        if (self.content is None) == (self.path is None):
            raise ValueError("a parse_yaml step needs exactly one of 'content' or 'path'")
        return self


STEP_TYPE = StepDefinition("parse_yaml", "Parse YAML text", ParseYamlParameters)
