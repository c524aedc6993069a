"""The `similarity_search` step: the tenant's stored vectors nearest to a query (a vector, or
a text embedded by the policy's endpoint), from the memory service (RustChain's were made up)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, Use
from rustchain.domain.policy.rules import Sink
from rustchain.steps.generate_embedding import DEFAULT_MODEL
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.embeddings_client import MAX_DIMENSIONS, embed
from rustchain.steps.support.runtime import StepContext, StepRunError


class SimilaritySearchParameters(BaseModel):
    """The query (a vector, or a text with the model to embed it), the collection, how many."""

    model_config = PARAMETERS
    query_embedding: (
        Annotated[list[float], Field(min_length=1, max_length=MAX_DIMENSIONS)] | None
    ) = None
    query: Annotated[str, Field(min_length=1)] | None = None
    model: Annotated[str, Field(min_length=1)] = DEFAULT_MODEL
    database: Annotated[str, Field(min_length=1, max_length=200)] = "default"
    top_k: Annotated[int, Field(ge=1, le=1000)] = 5
    # Results less similar than this (cosine similarity, -1 to 1) are left out.
    threshold: Annotated[float, Field(ge=-1, le=1)] | None = None

    @model_validator(mode="after")
    def _one_query(self) -> SimilaritySearchParameters:
        if (self.query_embedding is None) == (self.query is None):
            raise ValueError(
                "give exactly one of 'query_embedding' (a vector) and 'query' (a text)"
            )
        return self


async def similarity_search(
    params: SimilaritySearchParameters, context: StepContext
) -> dict[str, Any]:
    """`{"database", "top_k", "results", "count"}`; each result: id, score, text, metadata, rank."""
    if context.memory is None:
        raise StepRunError("this deployment has no memory service to search")
    if params.query is not None:
        vector = await embed(context, params.model, params.query)
    else:
        vector = list(params.query_embedding or [])
    found = await context.memory.nearest(params.database, vector, params.top_k)
    if params.threshold is not None:
        found = [f for f in found if f["score"] >= params.threshold]
    results = [
        {
            "id": f["id"],
            "score": f["score"],
            "text": f["content"],
            "metadata": f["metadata"],
            "rank": rank,
        }
        for rank, f in enumerate(found, start=1)
    ]
    return {
        "database": params.database,
        "top_k": params.top_k,
        "results": results,
        "count": len(results),
    }


STEP_TYPE = StepDefinition(
    "similarity_search",
    "Find the stored embeddings nearest a query",
    SimilaritySearchParameters,
    run=similarity_search,
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """A query text is embedded: its model must be allowed. Memory is the tenant's own."""
    parameters = step.parameters
    model = parameters.get("model", DEFAULT_MODEL)
    if "query" not in parameters or not isinstance(model, str):
        return []
    return [Use(Sink.EMBEDDING_MODEL, "model", model)]


CONSTRAINTS = constraints
