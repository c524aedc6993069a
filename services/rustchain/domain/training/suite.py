"""A training suite: a mission, its scenarios with expectations, and the policy search space.

A suite is what the trainer learns from. Each scenario gives the mission's variables and what
its outputs should be; a stable share of scenarios (chosen by a hash of their ids, so the split
never moves) is held out to prove an improvement on missions the optimiser never trained on.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rustchain.domain.language.diagnostics import DiagnosticSink
from rustchain.domain.language.model_errors import validate_node
from rustchain.domain.language.source import NodeKind
from rustchain.domain.language.yaml_reader import read_source

_STRICT = ConfigDict(extra="forbid", frozen=True)


class Expectation(BaseModel):
    """One check on one output of the mission; exactly one of the four kinds."""

    model_config = _STRICT
    output: Annotated[str, Field(min_length=1)]
    equals: Any = None
    contains: str | None = None
    matches: str | None = None
    json_schema: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Expectation:
        kinds = [self.equals, self.contains, self.matches, self.json_schema]
        if sum(kind is not None for kind in kinds) != 1:
            raise ValueError(
                "an expectation names exactly one of equals, contains, matches, json_schema"
            )
        return self

    @property
    def kind(self) -> str:
        """Which check this is."""
        for name in ("equals", "contains", "matches", "json_schema"):
            if getattr(self, name) is not None:
                return name
        raise AssertionError("validated to have one kind")


class Scenario(BaseModel):
    """One run of the mission: its variables, what its outputs should be, a reference answer."""

    model_config = _STRICT
    id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]
    variables: dict[str, Any] = Field(default_factory=dict)
    expect: list[Expectation] = Field(default_factory=list)
    # The answer a good run gives, for the LLM judge's rubric and for exports (optional).
    reference: str | None = None


class JudgeWeights(BaseModel):
    """How much each part of a trajectory counts in the rule judge's score (any scale)."""

    model_config = _STRICT
    expectations: Annotated[float, Field(ge=0)] = 1.0
    outcome: Annotated[float, Field(ge=0)] = 0.2
    failed_steps: Annotated[float, Field(ge=0)] = 0.0
    attempts: Annotated[float, Field(ge=0)] = 0.0
    tokens: Annotated[float, Field(ge=0)] = 0.0
    time: Annotated[float, Field(ge=0)] = 0.0


class JudgeSettings(BaseModel):
    """The rule judge's weights and budgets, and the LLM judge (when `model` is set)."""

    model_config = _STRICT
    weights: JudgeWeights = Field(default_factory=JudgeWeights)
    token_budget: Annotated[int, Field(ge=1)] = 4000
    time_budget_seconds: Annotated[float, Field(gt=0)] = 60.0
    model: str | None = None
    rubric: str = (
        "A trajectory that reaches the goal scores higher than one that does not. Among those "
        "that reach it, the more efficient scores higher. Partial progress earns partial credit."
    )
    # How much of the reward the LLM judge decides; the rest stays with the rule judge.
    llm_share: Annotated[float, Field(ge=0, le=1)] = 0.5


class SearchSpace(BaseModel):
    """What the optimiser may change, per llm step it tunes."""

    model_config = _STRICT
    steps: Annotated[list[str], Field(min_length=1)]
    models: list[str] = Field(default_factory=list)
    temperatures: list[Annotated[float, Field(ge=0, le=2)]] = Field(default_factory=list)
    instructions: list[str] = Field(default_factory=list)
    few_shot: list[Annotated[int, Field(ge=0, le=16)]] = Field(default_factory=lambda: [0])
    max_tokens: list[Annotated[int, Field(ge=1)]] = Field(default_factory=list)
    # Attempts of the tuned step (its retry); the plan's backoff stays.
    max_attempts: list[Annotated[int, Field(ge=1, le=100)]] = Field(default_factory=list)


class OptimiserSettings(BaseModel):
    """How hard the optimiser searches and how sure it must be to promote."""

    model_config = _STRICT
    candidates: Annotated[int, Field(ge=1, le=256)] = 8
    runs_per_scenario: Annotated[int, Field(ge=1, le=16)] = 1
    margin: Annotated[float, Field(ge=0, le=1)] = 0.05
    confidence: Annotated[float, Field(gt=0.5, lt=1)] = 0.95
    resamples: Annotated[int, Field(ge=100, le=100_000)] = 2000


class Suite(BaseModel):
    """A suite as written in `suite.yaml`."""

    model_config = _STRICT
    version: int = 1
    name: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str = ""
    mission: Annotated[str, Field(min_length=1)]
    holdout: Annotated[float, Field(gt=0, lt=1)] = 0.3
    scenarios: Annotated[list[Scenario], Field(min_length=2)]
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    search: SearchSpace
    optimiser: OptimiserSettings = Field(default_factory=OptimiserSettings)

    @model_validator(mode="after")
    def _unique_ids(self) -> Suite:
        seen: set[str] = set()
        for scenario in self.scenarios:
            if scenario.id in seen:
                raise ValueError(f"scenario id '{scenario.id}' is used twice")
            seen.add(scenario.id)
        return self

    def held_out(self, scenario: Scenario) -> bool:
        """Whether a scenario is in the held-out split: by a hash of suite and scenario id, so
        adding or reordering scenarios never moves another one across the split."""
        digest = hashlib.sha256(f"{self.name}\x00{scenario.id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.holdout

    def split(self) -> tuple[list[Scenario], list[Scenario]]:
        """(training, held-out); each has at least one scenario when the suite has two."""
        training = [s for s in self.scenarios if not self.held_out(s)]
        held = [s for s in self.scenarios if self.held_out(s)]
        if not held:
            held, training = training[-1:], training[:-1]
        elif not training:
            training, held = held[:1], held[1:]
        return training, held


def parse_suite(data: bytes, file: str, sink: DiagnosticSink) -> Suite | None:
    """A suite from a YAML (or JSON) file's bytes; errors go to the sink as FILE:LINE:COL."""
    document = read_source(data, file, sink)
    if document is None:
        return None
    root = document.root
    if root.kind is not NodeKind.MAPPING:
        sink.error(root.position, "a suite is a mapping with 'name', 'mission', 'scenarios', ...")
        return None
    return validate_node(Suite, root.to_plain(), root, sink, "the suite")
