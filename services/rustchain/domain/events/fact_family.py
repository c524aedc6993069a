"""The one path from a stored event to its fact: upcast to the current version, then typed.

A family is the facts one service records (the executor's run facts, the verifier's verdicts):
their models, the type names derived from those models, and the upcasters of their older
versions. Every reader of stored events goes through `FactFamily.read`, so no reader can skip
upcasting or read a payload by hand; the stored envelope stays beside the fact, because chains
are verified on events as stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from types import UnionType
from typing import Annotated, Any, Generic, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from rustchain.domain.errors import CorruptHistoryError
from rustchain.domain.events.envelope import EventEnvelope
from rustchain.domain.events.upcast import Payload, Upcasters

F = TypeVar("F")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Recorded(Generic[F]):
    """A stored event and its fact at the current version of its type."""

    stored: EventEnvelope
    """The event as stored: its hash covers this form (verify chains on it, never on `fact`)."""
    fact: F
    version: int
    """The version `fact` is at (the current one; `stored.version` may be older)."""

    @property
    def type(self) -> str:
        """The event type."""
        return self.stored.type

    @property
    def tenant(self) -> str:
        """The tenant that owns the event."""
        return self.stored.tenant

    @property
    def mission_id(self) -> str:
        """The mission the event belongs to."""
        return self.stored.mission_id

    @property
    def service(self) -> str:
        """The service that recorded it."""
        return self.stored.service

    @property
    def occurred_at(self) -> datetime:
        """When it happened (UTC)."""
        return self.stored.occurred_at

    @property
    def sequence(self) -> int:
        """Its place in its chain."""
        return self.stored.sequence


def _members(union: Any) -> tuple[type[BaseModel], ...]:
    """The models of a union of models (annotated, discriminated or nested), or of one model."""
    if get_origin(union) is Annotated:
        return _members(get_args(union)[0])
    if get_origin(union) in (Union, UnionType):
        return tuple(m for member in get_args(union) for m in _members(member))
    if isinstance(union, type) and issubclass(union, BaseModel):
        return (union,)
    raise TypeError(f"a fact family is a union of models, not {union!r}")


def _type_name(model: type[BaseModel]) -> str:
    field = model.model_fields.get("type")
    if field is None or not isinstance(field.default, str):
        raise TypeError(f"{model.__name__} needs a `type` field whose default is its name")
    return field.default


def _first_problem(error: ValidationError, event_type: str) -> str:
    first = error.errors()[0]
    loc = list(first["loc"])
    if loc and loc[0] == event_type:  # the union's tag, not a field
        loc = loc[1:]
    where = ".".join(str(part) for part in loc) or "payload"
    more = error.error_count() - 1
    return f"{where}: {first['msg']}" + (f" (and {more} more)" if more else "")


class FactFamily(Generic[F]):
    """The facts of one kind: their models, type names, versions and upcasters."""

    def __init__(self, union: Any, upcasters: Upcasters) -> None:
        self.models = _members(union)
        self.types: tuple[str, ...] = tuple(_type_name(m) for m in self.models)
        """Every event type of the family, in the order of its union (derived, never listed)."""
        self.upcasters = upcasters
        self._adapter: TypeAdapter[Any] = TypeAdapter(union)

    def __contains__(self, event_type: object) -> bool:
        return event_type in self.types

    def current_version(self, event_type: str) -> int:
        """The version a fact of this type is written at now."""
        return self.upcasters.current_version(event_type)

    def version_of(self, fact: BaseModel) -> int:
        """The version a fact is written at now."""
        return self.current_version(_type_name(type(fact)))

    def parse_payload(self, event_type: str, version: int, payload: Payload, where: str) -> F:
        """A payload of any version of its type as the current fact; `where` names the event.

        Raises CorruptHistoryError when the type is not of this family, the version has no path
        to the current one, or the payload does not fit its fact."""
        if event_type not in self.types:
            raise CorruptHistoryError(
                f"event {where} is a {event_type!r}, not one of {', '.join(self.types)}"
            )
        current, _ = self.upcasters.upcast_payload(event_type, version, payload, where)
        try:
            fact: F = self._adapter.validate_python({**current, "type": event_type})
        except ValidationError as error:
            raise CorruptHistoryError(
                f"event {where}, {event_type} v{version}, does not hold a {event_type}:"
                f" {_first_problem(error, event_type)}"
            ) from None
        return fact

    def read(self, event: EventEnvelope) -> Recorded[F]:
        """A stored event of any version as its current fact (CorruptHistoryError if it cannot)."""
        where = f"#{event.sequence} of mission {event.tenant}/{event.mission_id} ({event.id})"
        fact = self.parse_payload(event.type, event.version, event.payload, where)
        return Recorded(event, fact, self.current_version(event.type))

    def type_of(self, model: type[BaseModel]) -> str:
        """The event type name of one of the family's models."""
        if model not in self.models:
            raise TypeError(f"{model.__name__} is not a fact of this family")
        return _type_name(model)

    def read_as(self, event: EventEnvelope, model: type[M]) -> M:
        """A stored event read as one particular fact (CorruptHistoryError if it is another)."""
        fact = self.read(event).fact
        if not isinstance(fact, model):
            raise CorruptHistoryError(f"event {event.id} is a {event.type}, not a {model.__name__}")
        return fact

    def read_all(self, events: Iterable[EventEnvelope]) -> list[Recorded[F]]:
        """The family's facts among stored events, in the order given; other types are passed
        over (they are another family's)."""
        return [self.read(event) for event in events if event.type in self.types]

    def payload(self, fact: BaseModel) -> Payload:
        """The JSON payload to store (the type travels in the envelope)."""
        return fact.model_dump(mode="json", exclude={"type"})


def family_of(union: Any, *families: FactFamily[Any]) -> FactFamily[Any]:
    """One family over several: `union` holds exactly their models, each type in one of them."""
    combined: FactFamily[Any] = FactFamily(union, Upcasters())
    parts = [m for family in families for m in family.models]
    if sorted(combined.types) != sorted(_type_name(m) for m in parts):
        raise TypeError(f"{union!r} is not the union of the families' facts")
    for family in families:
        combined.upcasters.include(family.upcasters)
    return combined
