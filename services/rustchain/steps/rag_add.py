"""The `rag_add` step: add a document to the tenant's memory."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext, StepRunError


class RagAddParameters(BaseModel):
    """The text to remember, under an optional id, in a collection."""

    model_config = PARAMETERS
    content: Annotated[str, Field(min_length=1)]
    id: str | None = None
    collection: Annotated[str, Field(min_length=1)] = "default"
    metadata: dict[str, Any] = Field(default_factory=dict)


async def rag_add(params: RagAddParameters, context: StepContext) -> dict[str, str]:
    """Store the document in the tenant's memory."""
    if context.memory is None:
        raise StepRunError("this deployment has no memory service for rag steps")
    doc_id = await context.memory.add(params.collection, params.content, params.id, params.metadata)
    return {"id": doc_id, "collection": params.collection}


STEP_TYPE = StepDefinition("rag_add", "Add a document to memory", RagAddParameters, run=rag_add)


def constraints(step: PlannedStep) -> list[Obligation]:
    """Memory is the tenant's own; adding to it is governed by no policy rule."""
    del step
    return []


CONSTRAINTS = constraints
