"""The `rag_query` step: search the tenant's memory."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from rustchain.domain.plan import PlannedStep
from rustchain.domain.policy_obligations import Obligation
from rustchain.steps.definition import PARAMETERS, StepDefinition


class RagQueryParameters(BaseModel):
    """What to search for, where, and how many results."""

    model_config = PARAMETERS
    query: Annotated[str, Field(min_length=1)]
    collection: Annotated[str, Field(min_length=1)] = "default"
    limit: Annotated[int, Field(ge=1, le=1000)] = 5


STEP_TYPE = StepDefinition("rag_query", "Search memory", RagQueryParameters)


def constraints(step: PlannedStep) -> list[Obligation]:
    """Memory is the tenant's own; searching it is governed by no policy rule."""
    del step
    return []


CONSTRAINTS = constraints
