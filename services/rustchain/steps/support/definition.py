"""The concrete step-type record each step module exports."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from rustchain.steps.support.runtime import Runner

# Parameters are strict like the rest of a mission: RustChain never guessed that "30" meant 30.
# Each model's validator is built when first used, not at import: a mission uses a few of the
# step types, and `rustchain validate` should not pay for all of them.
PARAMETERS = ConfigDict(strict=True, extra="ignore", frozen=True, defer_build=True)


@dataclass(frozen=True)
class StepDefinition:
    """A step type: its canonical name, one-line summary, parameter model and runner."""

    name: str
    summary: str
    parameters: type[BaseModel]
    run: Runner | None = None
