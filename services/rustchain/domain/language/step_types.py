"""The step-type protocol and registry as the domain sees them; step modules implement them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel


class StepType(Protocol):
    """What the domain needs of a step type: its canonical name and its parameter model."""

    @property
    def name(self) -> str:
        """The canonical snake_case name, as written in missions."""
        ...

    @property
    def summary(self) -> str:
        """One line saying what the step does."""
        ...

    @property
    def parameters(self) -> type[BaseModel]:
        """The pydantic model of the step's `parameters`."""
        ...


@dataclass(frozen=True)
class StepTypeRegistry:
    """The step types a deployment runs, and the RustChain types it refuses with a reason."""

    types: Mapping[str, StepType]
    refused: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, types: Iterable[StepType], refused: Mapping[str, str]) -> StepTypeRegistry:
        """A registry from step types, refusing the named ones."""
        by_name: dict[str, StepType] = {}
        for step_type in types:
            if step_type.name in by_name:
                raise ValueError(f"step type '{step_type.name}' is registered twice")
            by_name[step_type.name] = step_type
        return cls(by_name, dict(refused))

    def get(self, name: str) -> StepType | None:
        """The step type of that canonical name, if it is registered."""
        return self.types.get(name)

    @property
    def names(self) -> list[str]:
        """Every runnable step type's canonical name, sorted."""
        return sorted(self.types)


_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def canonical_step_type(written: str) -> str:
    """RustChain accepts `create_file`, `CreateFile` and `Tool`; all name the snake-case type."""
    if written != written.lower() and written.isidentifier():
        return _CAMEL_BOUNDARY.sub("_", written).lower()
    return written
