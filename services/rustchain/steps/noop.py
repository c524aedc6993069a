"""The `noop` step: do nothing; useful to join branches or mark a point in a mission."""

from __future__ import annotations

from pydantic import BaseModel

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext


class NoopParameters(BaseModel):
    """An optional message, recorded as the output."""

    model_config = PARAMETERS
    message: str | None = None


async def noop(params: NoopParameters, context: StepContext) -> str | None:
    """Nothing; the message, if any, is the output."""
    return params.message


STEP_TYPE = StepDefinition("noop", "Do nothing", NoopParameters, run=noop)


def constraints(step: PlannedStep) -> list[Obligation]:
    """A noop does nothing the policy governs."""
    del step
    return []


CONSTRAINTS = constraints
