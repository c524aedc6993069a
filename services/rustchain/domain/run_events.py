"""The facts of a mission run, as the executor records them (payloads of stored events)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

_FACT = ConfigDict(frozen=True, extra="forbid")

Outcome = Literal["succeeded", "failed", "cancelled"]


class MissionStarted(BaseModel):
    """A verified plan was accepted for running, with its inputs and its workspace."""

    model_config = _FACT
    type: Literal["MissionStarted"] = "MissionStarted"
    plan: dict[str, Any]
    plan_hash: str
    variables: dict[str, Any]
    workspace: str


class StepStarted(BaseModel):
    """An attempt of a step began; recorded before its side effect."""

    model_config = _FACT
    type: Literal["StepStarted"] = "StepStarted"
    step_id: str
    attempt: Annotated[int, Field(ge=1)]


class StepSucceeded(BaseModel):
    """An attempt of a step finished well, with its output."""

    model_config = _FACT
    type: Literal["StepSucceeded"] = "StepSucceeded"
    step_id: str
    attempt: Annotated[int, Field(ge=1)]
    output: Any = None
    duration_ms: Annotated[int, Field(ge=0)] = 0


class StepFailed(BaseModel):
    """An attempt of a step failed; `retry_at` says when it is tried again (None: never)."""

    model_config = _FACT
    type: Literal["StepFailed"] = "StepFailed"
    step_id: str
    attempt: Annotated[int, Field(ge=1)]
    error: str
    retry_at: datetime | None = None
    duration_ms: Annotated[int, Field(ge=0)] = 0


class StepInterrupted(BaseModel):
    """The executor stopped during an attempt; an idempotent step runs again, others fail."""

    model_config = _FACT
    type: Literal["StepInterrupted"] = "StepInterrupted"
    step_id: str
    attempt: Annotated[int, Field(ge=1)]
    rerun: bool
    reason: str


class StepSkipped(BaseModel):
    """A step will not run, and why."""

    model_config = _FACT
    type: Literal["StepSkipped"] = "StepSkipped"
    step_id: str
    reason: str


class MissionCancelRequested(BaseModel):
    """Someone asked to stop the mission; running steps finish, nothing new starts."""

    model_config = _FACT
    type: Literal["MissionCancelRequested"] = "MissionCancelRequested"
    reason: str


class MissionFinished(BaseModel):
    """The mission reached its end."""

    model_config = _FACT
    type: Literal["MissionFinished"] = "MissionFinished"
    outcome: Outcome
    failed_steps: list[str] = Field(default_factory=list)
    outputs: dict[str, Any] = Field(default_factory=dict)


RunEvent = Annotated[
    MissionStarted
    | StepStarted
    | StepSucceeded
    | StepFailed
    | StepInterrupted
    | StepSkipped
    | MissionCancelRequested
    | MissionFinished,
    Field(discriminator="type"),
]

RUN_EVENT_TYPES = (
    "MissionStarted",
    "StepStarted",
    "StepSucceeded",
    "StepFailed",
    "StepInterrupted",
    "StepSkipped",
    "MissionCancelRequested",
    "MissionFinished",
)

_ADAPTER: TypeAdapter[RunEvent] = TypeAdapter(RunEvent)


def parse_run_event(event_type: str, payload: dict[str, Any]) -> RunEvent:
    """A stored payload back as its fact."""
    return _ADAPTER.validate_python({**payload, "type": event_type})


def run_event_payload(event: RunEvent) -> dict[str, Any]:
    """The JSON payload to store (the type travels in the envelope)."""
    return event.model_dump(mode="json", exclude={"type"})
