"""The concrete step-type record each step module exports."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

# Parameters are strict like the rest of a mission: RustChain never guessed that "30" meant 30.
PARAMETERS = ConfigDict(strict=True, extra="ignore", frozen=True)


@dataclass(frozen=True)
class StepDefinition:
    """A step type: its canonical name, one-line summary and parameter model."""

    name: str
    summary: str
    parameters: type[BaseModel]
