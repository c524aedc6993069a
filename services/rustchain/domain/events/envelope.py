"""The event envelope every stored and relayed event carries, sealed into its mission's chain."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rustchain.domain.events import names as event_names
from rustchain.domain.events.names import NO_MISSION
from rustchain.domain.plans.plan import canonical_json

GENESIS_HASH = "0" * 64
"""The `previous_hash` of the first event of a mission."""

_EVENT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# W3C Trace Context, version 00: trace id and parent id must not be all zeros.
_TRACEPARENT = re.compile(r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class EventChainError(ValueError):
    """An event that cannot follow the one given as its predecessor."""


class EventDraft(BaseModel):
    """An event as its producer states it, before it takes its place in the mission's chain."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    tenant: str
    mission_id: str = NO_MISSION
    service: str
    aggregate_id: Annotated[str, Field(min_length=1, max_length=256)]
    aggregate_version: Annotated[int, Field(ge=1)]
    type: str
    version: Annotated[int, Field(ge=1)] = 1
    occurred_at: datetime
    payload: dict[str, Any]
    traceparent: str | None = None

    @field_validator("id")
    @classmethod
    def _id_is_uuid(cls, value: str) -> str:
        if not _EVENT_ID.fullmatch(value):
            raise ValueError(f"event id {value!r} is not a lower-case UUID")
        return value

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, value: str) -> str:
        return event_names.validate_tenant(value)

    @field_validator("mission_id")
    @classmethod
    def _mission(cls, value: str) -> str:
        return event_names.validate_mission_id(value)

    @field_validator("service")
    @classmethod
    def _service(cls, value: str) -> str:
        return event_names.validate_service(value)

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        return event_names.validate_event_type(value)

    @field_validator("occurred_at")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("occurred_at must carry a time zone")
        return value.astimezone(UTC)

    @field_validator("traceparent")
    @classmethod
    def _traceparent(cls, value: str | None) -> str | None:
        if value is not None and not _TRACEPARENT.fullmatch(value):
            raise ValueError(f"traceparent {value!r} is not a W3C version-00 traceparent")
        return value

    @property
    def subject(self) -> str:
        """The NATS subject this event is published on."""
        return event_names.event_subject(self.tenant, self.mission_id, self.service, self.type)

    @property
    def chain_key(self) -> tuple[str, str]:
        """The chain this event belongs to: (tenant, mission id)."""
        return (self.tenant, self.mission_id)


class EventEnvelope(EventDraft):
    """A sealed event: its place in the mission's chain and the SHA-256 that links it there."""

    sequence: Annotated[int, Field(ge=1)]
    previous_hash: str
    hash: str

    @field_validator("previous_hash", "hash")
    @classmethod
    def _sha256(cls, value: str) -> str:
        if not _SHA256.fullmatch(value):
            raise ValueError(f"{value!r} is not a lower-case hex SHA-256")
        return value

    def content(self) -> dict[str, Any]:
        """Everything the hash covers: the whole event except the hash itself."""
        return self.model_dump(mode="json", exclude={"hash"})

    def computed_hash(self) -> str:
        """The hash this event's content calls for (equal to `hash` unless it was altered)."""
        return content_hash(self.content())

    def to_document(self) -> dict[str, Any]:
        """The JSON-ready form, as stored and as published."""
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        """The canonical JSON form, as stored and as published."""
        return canonical_json(self.to_document())


def content_hash(content: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of an event's content."""
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def seal(draft: EventDraft, previous: EventEnvelope | None) -> EventEnvelope:
    """The draft as the next event of its mission's chain, after `previous` (None: the first)."""
    if previous is not None and previous.chain_key != draft.chain_key:
        raise EventChainError(
            f"event {draft.id} of {draft.chain_key} cannot follow event {previous.id}"
            f" of {previous.chain_key}: a chain holds the events of one mission"
        )
    fields = draft.model_dump()
    fields["sequence"] = 1 if previous is None else previous.sequence + 1
    fields["previous_hash"] = GENESIS_HASH if previous is None else previous.hash
    unhashed = EventEnvelope.model_validate({**fields, "hash": GENESIS_HASH})
    return unhashed.model_copy(update={"hash": unhashed.computed_hash()})


def seal_all(
    drafts: list[EventDraft], heads: dict[tuple[str, str], EventEnvelope]
) -> list[EventEnvelope]:
    """Seal drafts in order, each after the head of its chain; `heads` is updated in place."""
    sealed: list[EventEnvelope] = []
    for draft in drafts:
        event = seal(draft, heads.get(draft.chain_key))
        heads[draft.chain_key] = event
        sealed.append(event)
    return sealed


def decode_event(document: dict[str, Any]) -> EventEnvelope:
    """An envelope from its stored or published JSON document."""
    return EventEnvelope.model_validate(document)
