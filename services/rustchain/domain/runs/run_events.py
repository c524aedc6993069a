"""The facts of a mission run, as the executor records them (payloads of stored events)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rustchain.domain.events.envelope import EventEnvelope
from rustchain.domain.events.fact_family import FactFamily
from rustchain.domain.events.upcast import Upcasters
from rustchain.domain.plans.artifacts import ArtifactRef

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
    # Salts the digests of the secret values its steps use (recorded only when it has secrets).
    secret_salt: str = ""


class StepStarted(BaseModel):
    """An attempt of a step began, with the parameters its runner is given; before its effect.

    Version 2 records `inputs`, the rendered parameters exactly as the runner receives them, or
    `input_error` when they could not be rendered (the runner is then not called). Version 1
    recorded neither; it is upcast with both None: "not recorded".
    """

    model_config = _FACT
    type: Literal["StepStarted"] = "StepStarted"
    step_id: str
    attempt: Annotated[int, Field(ge=1)]
    inputs: dict[str, Any] | None = None
    input_error: str | None = None
    # `{secrets.NAME}` stays as written in `inputs`; each name's salted value digest is here.
    secret_digests: dict[str, str] = Field(default_factory=dict)
    # The learned policy applied to `inputs` (an llm step): its version and the parameters it
    # set, or why the tenant's policy refused it; None when no policy applied.
    tuning: dict[str, Any] | None = None

    @property
    def inputs_recorded(self) -> bool:
        """False for a version-1 fact, which did not record what the runner was given."""
        return self.inputs is not None or self.input_error is not None


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


class WorkspaceSaved(BaseModel):
    """The mission's workspace after a step, kept as a tar artifact a new owner restores.

    `archive` references the tar in the tenant's artifact store the way any recorded value does
    (`{"$artifact": {sha256, size, ...}}`), so the relay carries it to the tenant's object store
    and `audit verify` checks it like every other artifact; `files` counts its regular files,
    `omitted` the entries it could not hold (sockets, pipes, devices, links out of the
    workspace)."""

    model_config = _FACT
    type: Literal["WorkspaceSaved"] = "WorkspaceSaved"
    after_step: str
    archive: dict[Literal["$artifact"], ArtifactRef]
    files: Annotated[int, Field(ge=0)]
    omitted: Annotated[int, Field(ge=0)] = 0

    @property
    def ref(self) -> ArtifactRef:
        """The archive's artifact reference."""
        return self.archive["$artifact"]


class WorkspaceNotSaved(BaseModel):
    """The workspace after a step could not be kept (over the snapshot limit), and why.

    Recorded when the workspace stops being saved, not at every step while it stays unsaved."""

    model_config = _FACT
    type: Literal["WorkspaceNotSaved"] = "WorkspaceNotSaved"
    after_step: str
    reason: str


RunEvent = Annotated[
    MissionStarted
    | StepStarted
    | StepSucceeded
    | StepFailed
    | StepInterrupted
    | StepSkipped
    | MissionCancelRequested
    | MissionFinished
    | WorkspaceSaved
    | WorkspaceNotSaved,
    Field(discriminator="type"),
]


def _inputs_not_recorded(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "inputs": None, "input_error": None}


RUN_UPCASTERS = Upcasters()
"""How stored run facts of older versions read as the current ones."""
RUN_UPCASTERS.register("StepStarted", 1, _inputs_not_recorded)

RUN_FACTS: FactFamily[RunEvent] = FactFamily(RunEvent, RUN_UPCASTERS)
"""The executor's facts: the only path from a stored run event to its fact."""

RUN_EVENT_TYPES = RUN_FACTS.types
"""Every run fact's type name, derived from the models of `RunEvent`."""


def run_event_version(event: RunEvent) -> int:
    """The version a fact is written at now."""
    return RUN_FACTS.version_of(event)


def run_fact(event: EventEnvelope) -> RunEvent:
    """A stored event of any version as the current version of its fact.

    Raises CorruptHistoryError when it cannot be read (see `FactFamily.read`)."""
    return RUN_FACTS.read(event).fact


def run_event_payload(event: RunEvent) -> dict[str, Any]:
    """The JSON payload to store (the type travels in the envelope)."""
    payload = RUN_FACTS.payload(event)
    # Facts of missions without secrets (or learned policies) read exactly as before they existed.
    for key in (*_SECRET_FIELDS, "tuning"):
        if key in payload and not payload[key]:
            del payload[key]
    return payload


_SECRET_FIELDS = ("secret_salt", "secret_digests")
