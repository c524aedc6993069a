"""The `agent` step: an LLM agent pursues an objective with tools, for a bounded number of turns."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, TokenUse, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.llm_client import ChatRequest, chat
from rustchain.steps.support.runtime import StepContext, StepRunError, read_workspace_file
from rustchain.steps.tools import call_tool, describe_tools


class AgentParameters(BaseModel):
    """The objective (RustChain also wrote it as `task`), tools and turn limit."""

    model_config = PARAMETERS
    objective: Annotated[str, Field(min_length=1)] | None = None
    task: Annotated[str, Field(min_length=1)] | None = None
    name: str | None = None
    agent_type: str | None = None
    tools: list[str] = Field(default_factory=list)
    context_file: Annotated[str, Field(min_length=1)] | None = None
    max_iterations: Annotated[int, Field(ge=1, le=1000)] = 10
    model: str | None = None

    @model_validator(mode="after")
    def _has_goal(self) -> AgentParameters:
        if self.objective is None and self.task is None:
            raise ValueError("an agent step needs an 'objective' (or 'task')")
        return self


MAX_CONTEXT_BYTES = 64 * 1024
_INSTRUCTIONS = """You are {name}, an agent working towards an objective.
Answer with exactly one JSON object and nothing else:
  {{"tool": "<tool name>", "parameters": {{...}}}} to call a tool, or
  {{"final": "<your answer>"}} when the objective is met.
Tools you may call:
{tools}"""


def _decision(text: str) -> dict[str, Any] | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        decided = json.loads(text[start : end + 1])
    except ValueError:
        return None
    return decided if isinstance(decided, dict) else None


async def agent(params: AgentParameters, context: StepContext) -> dict[str, Any]:
    """Ask the model, run the tools it calls, feed back the results, until it answers."""
    objective = params.objective or params.task or ""
    if params.context_file is not None:
        data = read_workspace_file(context, params.context_file, MAX_CONTEXT_BYTES, "context_file ")
        objective += "\n\nContext:\n" + data.decode("utf-8", errors="replace")
    tools = describe_tools(params.tools) if params.tools else "(none: answer from reasoning)"
    system = _INSTRUCTIONS.format(name=params.name or "an agent", tools=tools)
    messages = [{"role": "system", "content": system}, {"role": "user", "content": objective}]
    calls: list[dict[str, Any]] = []
    for turn in range(1, params.max_iterations + 1):
        answer = await chat(ChatRequest(list(messages), params.model), context)
        decided = _decision(answer)
        if decided is None or "final" in decided or "tool" not in decided:
            final = decided.get("final", answer) if decided else answer
            return {"answer": str(final), "turns": turn, "tool_calls": calls}
        name = str(decided["tool"])
        if name not in params.tools:
            result: Any = f"error: tool '{name}' is not available to this agent"
        else:
            try:
                result = await call_tool(name, dict(decided.get("parameters") or {}), context)
            except StepRunError as error:
                result = f"error: {error}"
        calls.append({"tool": name, "parameters": decided.get("parameters"), "result": result})
        messages.append({"role": "assistant", "content": answer})
        messages.append({"role": "user", "content": f"Tool result: {json.dumps(result)[:4000]}"})
    raise StepRunError(f"the agent did not reach a final answer in {params.max_iterations} turns")


STEP_TYPE = StepDefinition(
    "agent", "Pursue an objective with an LLM agent", AgentParameters, run=agent
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """Model and tools must be allowed; each turn may spend the policy's default tokens."""
    parameters = step.parameters
    uses: list[Obligation] = [*text_uses(Sink.MODEL, "model", parameters.get("model"))]
    uses += text_uses(Sink.PATH_READ, "context_file", parameters.get("context_file"))
    for index, tool in enumerate(parameters.get("tools") or []):
        uses += text_uses(Sink.TOOL, f"tools[{index}]", tool)
    turns = parameters.get("max_iterations", 10)
    uses.append(TokenUse("max_iterations", None, turns if isinstance(turns, int) else 10))
    return uses


CONSTRAINTS = constraints
