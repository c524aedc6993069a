"""The `rag_add` step: add a document to the tenant's memory."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from rustchain.domain.plan import PlannedStep
from rustchain.domain.policy_obligations import Obligation
from rustchain.steps.definition import PARAMETERS, StepDefinition


class RagAddParameters(BaseModel):
    """The text to remember, under an optional id, in a collection."""

    model_config = PARAMETERS
    content: Annotated[str, Field(min_length=1)]
    id: str | None = None
    collection: Annotated[str, Field(min_length=1)] = "default"
    metadata: dict[str, Any] = Field(default_factory=dict)


STEP_TYPE = StepDefinition("rag_add", "Add a document to memory", RagAddParameters)


def constraints(step: PlannedStep) -> list[Obligation]:
    """Memory is the tenant's own; adding to it is governed by no policy rule."""
    del step
    return []


CONSTRAINTS = constraints
