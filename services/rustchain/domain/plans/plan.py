"""The plan: a validated mission as a DAG with levels, critical path and a content hash."""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from rustchain.domain.language import graph
from rustchain.domain.language.diagnostics import Position
from rustchain.domain.language.mission import (
    MAX_TIMEOUT_SECONDS,
    Mission,
    MissionConfig,
    MissionStep,
    RetryPolicy,
    VariableSpec,
)

PLAN_FORMAT = 1


class SourceLocation(BaseModel):
    """Where a step is written, so later errors (the verifier's) can point at it."""

    model_config = ConfigDict(frozen=True)
    line: int
    column: int


class PlannedStep(BaseModel):
    """A step as the executor will run it: effective timeout and retry, and its level."""

    model_config = ConfigDict(frozen=True)
    id: str
    name: str
    step_type: str
    parameters: dict[str, Any]
    depends_on: list[str]
    level: Annotated[int, Field(ge=0)]
    timeout_seconds: Annotated[int, Field(ge=1, le=MAX_TIMEOUT_SECONDS)]
    retry: RetryPolicy
    continue_on_error: bool
    outputs: dict[str, str]


class Plan(BaseModel):
    """A mission ready to verify and run; `content_hash` identifies what it does."""

    model_config = ConfigDict(frozen=True)
    format: int = PLAN_FORMAT
    mission_name: str
    mission_version: str
    description: str | None
    config: MissionConfig
    variables: dict[str, VariableSpec]
    outputs: dict[str, str]
    steps: list[PlannedStep]
    levels: list[list[str]]
    critical_path: list[str]
    critical_path_seconds: float
    source_file: str
    sources: dict[str, SourceLocation]

    def content(self) -> dict[str, Any]:
        """Everything that decides what the plan does; not where it was written."""
        return self.model_dump(mode="json", exclude={"source_file", "sources"})

    @property
    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON of the plan's content."""
        return hashlib.sha256(canonical_json(self.content()).encode("utf-8")).hexdigest()

    @functools.cached_property
    def steps_by_id(self) -> dict[str, PlannedStep]:
        """The steps by id (computed once: plans are immutable)."""
        return {step.id: step for step in self.steps}

    @functools.cached_property
    def output_aliases(self) -> dict[str, dict[str, str]]:
        """Each step's declared output names, for steps that declare any."""
        return {step.id: step.outputs for step in self.steps if step.outputs}

    def step(self, step_id: str) -> PlannedStep:
        """The planned step of that id."""
        return self.steps_by_id[step_id]

    def to_json(self) -> str:
        """The stable, readable JSON form, with the hash."""
        document = {"hash": self.content_hash, **self.model_dump(mode="json")}
        return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no white space, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def step_budget_seconds(mission: Mission, step: MissionStep) -> float:
    """The longest a step may take: every attempt's timeout plus the waits between them."""
    retry = step.retry or RetryPolicy()
    waits = retry.backoff_seconds * (retry.max_attempts - 1)
    return mission.step_timeout(step) * retry.max_attempts + waits


def build_plan(mission: Mission, source_file: str, positions: dict[str, Position]) -> Plan:
    """The plan of a validated (hence acyclic, fully resolved) mission."""
    order = [step.id for step in mission.steps]
    deps = {step.id: list(step.depends_on) for step in mission.steps}
    by_id = {step.id: step for step in mission.steps}
    topo = graph.topological(order, deps)
    grouped = graph.levels(order, deps, topo)
    level_of = {step_id: depth for depth, level in enumerate(grouped) for step_id in level}
    path, seconds = graph.critical_path(
        order, deps, lambda step_id: step_budget_seconds(mission, by_id[step_id]), topo
    )
    default_retry = RetryPolicy()
    # Validating construction is the fast path here (pydantic-core), faster than model_construct.
    steps = [
        PlannedStep(
            id=step.id,
            name=step.title,
            step_type=step.step_type,
            parameters=step.parameters,
            depends_on=list(step.depends_on),
            level=level_of[step.id],
            timeout_seconds=mission.step_timeout(step),
            retry=step.retry or default_retry,
            continue_on_error=step.continue_on_error,
            outputs=dict(step.outputs),
        )
        for step in mission.steps
    ]
    return Plan(
        mission_name=mission.name,
        mission_version=mission.version,
        description=mission.description,
        config=mission.settings,
        variables=dict(mission.variables),
        outputs=dict(mission.outputs),
        steps=steps,
        levels=grouped,
        critical_path=path,
        critical_path_seconds=seconds,
        source_file=source_file,
        sources={k: SourceLocation(line=p.line, column=p.column) for k, p in positions.items()},
    )
