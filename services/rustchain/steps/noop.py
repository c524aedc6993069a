"""The `noop` step: do nothing; useful to join branches or mark a point in a mission."""

from __future__ import annotations

from pydantic import BaseModel

from rustchain.steps.definition import PARAMETERS, StepDefinition


class NoopParameters(BaseModel):
    """An optional message, recorded as the output."""

    model_config = PARAMETERS
    message: str | None = None


STEP_TYPE = StepDefinition("noop", "Do nothing", NoopParameters)
