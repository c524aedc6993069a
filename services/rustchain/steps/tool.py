"""The `tool` step: call a registered tool by name with its own parameters."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext
from rustchain.steps.tools import call_tool


class ToolParameters(BaseModel):
    """The tool's name and the parameters handed to it."""

    model_config = PARAMETERS
    tool: Annotated[str, Field(min_length=1)]
    parameters: dict[str, Any] = Field(default_factory=dict)


async def tool(params: ToolParameters, context: StepContext) -> Any:
    """Run the named tool with its parameters; its output is the step's output."""
    return await call_tool(params.tool, dict(params.parameters), context)


STEP_TYPE = StepDefinition("tool", "Call a registered tool", ToolParameters, run=tool)
_PATH_KEYS = frozenset({"path", "file_path", "source", "destination"})
_WRITING_TOOLS = frozenset({"create_file", "edit_file", "delete_file", "move_file", "copy_file"})


def constraints(step: PlannedStep) -> list[Obligation]:
    """The tool must be allowed; paths and URLs among its parameters are checked as such."""
    parameters = step.parameters
    name = parameters.get("tool")
    uses: list[Obligation] = [*text_uses(Sink.TOOL, "tool", name)]
    inner = parameters.get("parameters") or {}
    path_sink = Sink.PATH_WRITE if name in _WRITING_TOOLS else Sink.PATH_READ
    for key, value in inner.items() if isinstance(inner, dict) else ():
        if key in _PATH_KEYS:
            uses += text_uses(path_sink, f"parameters.{key}", value)
        elif key == "url":
            uses += text_uses(Sink.URL, f"parameters.{key}", value)
    return uses


CONSTRAINTS = constraints
