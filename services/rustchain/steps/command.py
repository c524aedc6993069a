"""The `command` step: run a program (argv, no shell unless asked) in the mission's workspace."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from rustchain.steps.definition import PARAMETERS, StepDefinition


class CommandParameters(BaseModel):
    """RustChain's `command` + `args` form; `shell: true` runs `command` through /bin/sh."""

    model_config = PARAMETERS
    command: Annotated[str, Field(min_length=1)]
    args: list[str] = Field(default_factory=list)
    shell: bool = False
    working_directory: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    max_output_bytes: Annotated[int, Field(ge=1)] = 1024 * 1024


STEP_TYPE = StepDefinition("command", "Run a program", CommandParameters)
