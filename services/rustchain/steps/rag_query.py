"""The `rag_query` step: search the tenant's memory."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext, StepRunError


class RagQueryParameters(BaseModel):
    """What to search for, where, and how many results."""

    model_config = PARAMETERS
    query: Annotated[str, Field(min_length=1)]
    collection: Annotated[str, Field(min_length=1)] = "default"
    limit: Annotated[int, Field(ge=1, le=1000)] = 5


async def rag_query(params: RagQueryParameters, context: StepContext) -> list[dict[str, Any]]:
    """The tenant's documents that match the query, best first."""
    if context.memory is None:
        raise StepRunError("this deployment has no memory service for rag steps")
    return await context.memory.search(params.collection, params.query, params.limit)


STEP_TYPE = StepDefinition("rag_query", "Search memory", RagQueryParameters, run=rag_query)


def constraints(step: PlannedStep) -> list[Obligation]:
    """Memory is the tenant's own; searching it is governed by no policy rule."""
    del step
    return []


CONSTRAINTS = constraints
