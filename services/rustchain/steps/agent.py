"""The `agent` step: an LLM agent pursues an objective with tools, for a bounded number of turns."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from rustchain.domain.plan import PlannedStep
from rustchain.domain.policy_obligations import Obligation, TokenUse, text_uses
from rustchain.domain.policy_rules import Sink
from rustchain.steps.definition import PARAMETERS, StepDefinition


class AgentParameters(BaseModel):
    """The objective (RustChain also wrote it as `task`), tools and turn limit."""

    model_config = PARAMETERS
    objective: Annotated[str, Field(min_length=1)] | None = None
    task: Annotated[str, Field(min_length=1)] | None = None
    name: str | None = None
    agent_type: str | None = None
    tools: list[str] = Field(default_factory=list)
    max_iterations: Annotated[int, Field(ge=1, le=1000)] = 10
    model: str | None = None

    @model_validator(mode="after")
    def _has_goal(self) -> AgentParameters:
        if self.objective is None and self.task is None:
            raise ValueError("an agent step needs an 'objective' (or 'task')")
        return self


STEP_TYPE = StepDefinition("agent", "Pursue an objective with an LLM agent", AgentParameters)


def constraints(step: PlannedStep) -> list[Obligation]:
    """Model and tools must be allowed; each turn may spend the policy's default tokens."""
    parameters = step.parameters
    uses: list[Obligation] = [*text_uses(Sink.MODEL, "model", parameters.get("model"))]
    for index, tool in enumerate(parameters.get("tools") or []):
        uses += text_uses(Sink.TOOL, f"tools[{index}]", tool)
    turns = parameters.get("max_iterations", 10)
    uses.append(TokenUse("max_iterations", None, turns if isinstance(turns, int) else 10))
    return uses


CONSTRAINTS = constraints
