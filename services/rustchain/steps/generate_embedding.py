"""The `generate_embedding` step: a text's embedding vector from the policy's embeddings
endpoint (RustChain's was a made-up vector), optionally stored in the tenant's memory for
`similarity_search`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, Use
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.embeddings_client import embed
from rustchain.steps.support.runtime import StepContext, StepRunError

DEFAULT_MODEL = "text-embedding-ada-002"


class GenerateEmbeddingParameters(BaseModel):
    """The text, the model, and where in memory to keep the vector (if anywhere)."""

    model_config = PARAMETERS
    text: Annotated[str, Field(min_length=1)]
    model: Annotated[str, Field(min_length=1)] = DEFAULT_MODEL
    # Our addition: store the vector and its text in this memory collection.
    collection: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


async def generate_embedding(
    params: GenerateEmbeddingParameters, context: StepContext
) -> dict[str, Any]:
    """`{"text", "model", "embedding", "dimensions", "stored"}` (`stored`: the collection and
    id it was kept under, or null)."""
    vector = await embed(context, params.model, params.text)
    stored = None
    if params.collection is not None:
        if context.memory is None:
            raise StepRunError("this deployment has no memory service to store embeddings in")
        doc_id = await context.memory.add_vector(
            params.collection, params.id, vector, params.text, params.metadata
        )
        stored = {"collection": params.collection, "id": doc_id}
    return {
        "text": params.text,
        "model": params.model,
        "embedding": vector,
        "dimensions": len(vector),
        "stored": stored,
    }


STEP_TYPE = StepDefinition(
    "generate_embedding",
    "Embed a text (and keep it for similarity_search)",
    GenerateEmbeddingParameters,
    run=generate_embedding,
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The model (RustChain's default when absent) must be allowed."""
    model = step.parameters.get("model", DEFAULT_MODEL)
    return [Use(Sink.EMBEDDING_MODEL, "model", model)] if isinstance(model, str) else []


CONSTRAINTS = constraints
