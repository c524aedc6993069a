"""The `chain` step: run a chain of prompts, each fed the previous answer."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, TokenUse, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.llm_client import ChatRequest, chat
from rustchain.steps.support.runtime import StepContext


class ChainParameters(BaseModel):
    """A prompt, or several prompts run in order (or in parallel)."""

    model_config = PARAMETERS
    type: Literal["sequential", "parallel"] = "sequential"
    prompt: Annotated[str, Field(min_length=1)] | None = None
    prompts: list[str] = Field(default_factory=list)
    model: str | None = None

    @model_validator(mode="after")
    def _has_prompt(self) -> ChainParameters:
        if self.prompt is None and not self.prompts:
            raise ValueError("a chain step needs a 'prompt' or a list of 'prompts'")
        return self


async def chain(params: ChainParameters, context: StepContext) -> str | list[str]:
    """Sequential: each prompt sees the previous answer, the last answer is the output.
    Parallel: every prompt on its own, the answers in order."""
    prompts = [params.prompt] if params.prompt is not None else []
    prompts += params.prompts
    if params.type == "parallel":
        answers = [
            await chat(ChatRequest([{"role": "user", "content": p}], params.model), context)
            for p in prompts
        ]
        return answers
    answer = ""
    for prompt in prompts:
        text = prompt if not answer else f"{prompt}\n\nPrevious answer:\n{answer}"
        answer = await chat(ChatRequest([{"role": "user", "content": text}], params.model), context)
    return answer


STEP_TYPE = StepDefinition("chain", "Run a chain of prompts", ChainParameters, run=chain)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The model must be allowed; each prompt may spend the policy's default tokens."""
    parameters = step.parameters
    prompts = len(parameters.get("prompts") or []) or 1
    return [
        *text_uses(Sink.MODEL, "model", parameters.get("model")),
        TokenUse("prompts", None, prompts),
    ]


CONSTRAINTS = constraints
