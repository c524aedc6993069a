"""The concrete step-type record each step module exports."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from rustchain.steps.runtime import Runner

# Parameters are strict like the rest of a mission: RustChain never guessed that "30" meant 30.
PARAMETERS = ConfigDict(strict=True, extra="ignore", frozen=True)


@dataclass(frozen=True)
class StepDefinition:
    """A step type: its canonical name, one-line summary, parameter model and runner."""

    name: str
    summary: str
    parameters: type[BaseModel]
    run: Runner | None = None
