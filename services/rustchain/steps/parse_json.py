"""The `parse_json` step: parse JSON text (or a workspace file) into structured output."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.workspace_files import source_text


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


MAX_TEXT = 10 * 1024 * 1024


async def parse_json(params: ParseJsonParameters, context: StepContext) -> Any:
    """The parsed value of the text or of the workspace file."""
    text = source_text(context, params.content, params.path, MAX_TEXT)
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise StepRunError(f"invalid JSON: {error}") from None


STEP_TYPE = StepDefinition("parse_json", "Parse JSON text", ParseJsonParameters, run=parse_json)


def constraints(step: PlannedStep) -> list[Obligation]:
    """A file parsed must stay in the workspace and outside denied paths."""
    return text_uses(Sink.PATH_READ, "path", step.parameters.get("path"))


CONSTRAINTS = constraints
