"""The `model_inference` step: one completion of a prompt, with the tokens it used and why it
stopped, through the executor's LLM endpoint and the tenant's `llm` policy (as `llm` steps)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, TokenUse, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.llm_client import ChatRequest, complete
from rustchain.steps.support.runtime import StepContext

DEFAULT_MAX_TOKENS = 100
# RustChain printed its provider's finish reasons by their Rust names.
FINISH_REASONS = {
    "stop": "Stop",
    "length": "Length",
    "tool_calls": "ToolCalls",
    "function_call": "ToolCalls",
    "content_filter": "ContentFilter",
}


class ModelInferenceParameters(BaseModel):
    """The prompt, the model (the executor's configured one when absent) and a token limit."""

    model_config = PARAMETERS
    prompt: Annotated[str, Field(min_length=1)]
    model: Annotated[str, Field(min_length=1)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] = DEFAULT_MAX_TOKENS


async def model_inference(params: ModelInferenceParameters, context: StepContext) -> dict[str, Any]:
    """`{"prompt", "model", "response", "max_tokens", "tokens_used", "finish_reason"}`."""
    request = ChatRequest(
        [{"role": "user", "content": params.prompt}], params.model, max_tokens=params.max_tokens
    )
    completion = await complete(request, context)
    reason = FINISH_REASONS.get((completion.finish_reason or "stop").lower(), "Error")
    return {
        "prompt": params.prompt,
        "model": completion.model,
        "response": completion.text,
        "max_tokens": params.max_tokens,
        "tokens_used": completion.total_tokens,
        "finish_reason": reason,
    }


STEP_TYPE = StepDefinition(
    "model_inference",
    "Run a prompt through a language model",
    ModelInferenceParameters,
    run=model_inference,
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The model must be allowed; its max_tokens (100 when absent) count against the budgets."""
    parameters = step.parameters
    tokens = parameters.get("max_tokens", DEFAULT_MAX_TOKENS)
    return [
        *text_uses(Sink.MODEL, "model", parameters.get("model")),
        TokenUse("max_tokens", tokens if isinstance(tokens, int) else None),
    ]


CONSTRAINTS = constraints
