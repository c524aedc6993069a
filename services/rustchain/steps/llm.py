"""The `llm` step: ask a language model (OpenAI-compatible or Ollama) for a completion."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, TokenUse, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.llm_client import ChatRequest, chat
from rustchain.steps.support.runtime import StepContext


class LlmExample(BaseModel):
    """One demonstration: a prompt and the answer wanted for it."""

    model_config = PARAMETERS
    prompt: str
    answer: str


class LlmParameters(BaseModel):
    """The prompt and, optionally, provider, model and sampling settings."""

    model_config = PARAMETERS
    prompt: Annotated[str, Field(min_length=1)]
    system: str | None = None
    provider: str | None = None
    model: str | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    # Demonstrations sent before the prompt as earlier turns (few-shot); a learned policy sets
    # them from high-reward trajectories.
    examples: list[LlmExample] = Field(default_factory=list)


async def llm(params: LlmParameters, context: StepContext) -> str:
    """The model's answer to the prompt."""
    messages = [{"role": "system", "content": params.system}] if params.system else []
    for example in params.examples:
        messages.append({"role": "user", "content": example.prompt})
        messages.append({"role": "assistant", "content": example.answer})
    messages.append({"role": "user", "content": params.prompt})
    request = ChatRequest(
        messages, params.model, params.provider, params.temperature, params.max_tokens
    )
    return await chat(request, context)


STEP_TYPE = StepDefinition("llm", "Ask a language model", LlmParameters, run=llm)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The model must be allowed; the tokens asked count against the step and mission budgets."""
    parameters = step.parameters
    tokens = parameters.get("max_tokens")
    return [
        *text_uses(Sink.MODEL, "model", parameters.get("model")),
        TokenUse("max_tokens", tokens if isinstance(tokens, int) else None),
    ]


CONSTRAINTS = constraints
