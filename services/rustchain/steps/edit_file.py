"""The `edit_file` step: replace, append to or rewrite a file in the workspace."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from rustchain.steps.definition import PARAMETERS, StepDefinition


class EditFileParameters(BaseModel):
    """Either `content` (replace or append) or `find` with `replace`."""

    model_config = PARAMETERS
    path: Annotated[str, Field(min_length=1)]
    content: str | None = None
    append: bool = False
    find: Annotated[str, Field(min_length=1)] | None = None
    replace: str | None = None

    @model_validator(mode="after")
    def _one_edit(self) -> EditFileParameters:
        if (self.content is None) == (self.find is None):
            raise ValueError("an edit_file step needs either 'content' or 'find' (with 'replace')")
        if self.find is not None and self.replace is None:
            raise ValueError("'find' needs 'replace' (the text to put in its place)")
        return self


STEP_TYPE = StepDefinition("edit_file", "Replace, append to or rewrite a file", EditFileParameters)
