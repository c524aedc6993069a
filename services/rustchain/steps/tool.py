"""The `tool` step: call a registered tool by name with its own parameters."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from rustchain.steps.definition import PARAMETERS, StepDefinition


class ToolParameters(BaseModel):
    """The tool's name and the parameters handed to it."""

    model_config = PARAMETERS
    tool: Annotated[str, Field(min_length=1)]
    parameters: dict[str, Any] = Field(default_factory=dict)


STEP_TYPE = StepDefinition("tool", "Call a registered tool", ToolParameters)
