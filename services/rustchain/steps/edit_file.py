"""The `edit_file` step: replace, append to or rewrite a file in the workspace."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.workspace_files import rewrite_text


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


async def edit_file(params: EditFileParameters, context: StepContext) -> dict[str, object]:
    """Rewrite, append to, or find-and-replace in an existing file."""
    replacements = 0

    def change(text: str) -> str:
        nonlocal replacements
        if params.find is not None:
            replacements = text.count(params.find)
            if replacements == 0:
                raise StepRunError(f"'{params.find}' does not occur in '{params.path}'")
            return text.replace(params.find, params.replace or "")
        if params.append:
            return text + (params.content or "")
        return params.content or ""

    edited = rewrite_text(context, params.path, change)
    return {"path": edited, "replacements": replacements}


STEP_TYPE = StepDefinition(
    "edit_file", "Replace, append to or rewrite a file", EditFileParameters, run=edit_file
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The file edited must stay in the workspace, outside denied and read-only paths."""
    return text_uses(Sink.PATH_WRITE, "path", step.parameters.get("path"))


CONSTRAINTS = constraints
