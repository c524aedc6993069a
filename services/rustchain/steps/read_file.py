"""The `read_file` step: read a text file from the workspace; its content is the step's output."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext, StepRunError, read_workspace_file


class ReadFileParameters(BaseModel):
    """The file, and how much of it at most."""

    model_config = PARAMETERS
    path: Annotated[str, Field(min_length=1)]
    max_bytes: Annotated[int, Field(ge=1)] = 10 * 1024 * 1024


async def read_file(params: ReadFileParameters, context: StepContext) -> str:
    """The file's text (UTF-8), refused beyond `max_bytes`."""
    data = read_workspace_file(context, params.path, params.max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise StepRunError(f"'{params.path}' is not UTF-8 text: {error.reason}") from None


STEP_TYPE = StepDefinition("read_file", "Read a text file", ReadFileParameters, run=read_file)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The file read must stay in the workspace and outside denied paths."""
    return text_uses(Sink.PATH_READ, "path", step.parameters.get("path"))


CONSTRAINTS = constraints
