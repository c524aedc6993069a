"""Versioned events: stored events are never rewritten, they are upcast when read."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from rustchain.domain.errors import CorruptHistoryError
from rustchain.domain.events.envelope import EventEnvelope

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]
State = TypeVar("State")


class UpcastError(CorruptHistoryError):
    """An event whose version has no path to the current version of its type."""


class Upcasters:
    """Payload upgrades per event type, one step from each version to the next."""

    def __init__(self) -> None:
        self._steps: dict[tuple[str, int], Upcaster] = {}
        self._current: dict[str, int] = {}

    def register(self, event_type: str, from_version: int, upcaster: Upcaster) -> None:
        """Declare how a payload of `from_version` becomes one of `from_version + 1`."""
        key = (event_type, from_version)
        if key in self._steps:
            raise ValueError(f"{event_type} v{from_version} already has an upcaster")
        self._steps[key] = upcaster
        self._current[event_type] = max(self._current.get(event_type, 1), from_version + 1)

    def current_version(self, event_type: str) -> int:
        """The version events of this type are written at now."""
        return self._current.get(event_type, 1)

    def upcast_payload(
        self, event_type: str, version: int, payload: Payload, where: str
    ) -> tuple[Payload, int]:
        """A payload of `version` as the current version of its type, and that version.

        `where` names the event in the error (its id, or where the payload came from)."""
        target = self.current_version(event_type)
        if version > target:
            raise UpcastError(
                f"event {where} is {event_type} v{version}, newer than this code knows (v{target})"
            )
        while version < target:
            step = self._steps.get((event_type, version))
            if step is None:
                raise UpcastError(f"no upcaster for {event_type} v{version} (event {where})")
            payload = step(dict(payload))
            version += 1
        return payload, version

    def upcast(self, event: EventEnvelope) -> EventEnvelope:
        """The event as the current version of its type; its stored hash is left as stored."""
        payload, version = self.upcast_payload(event.type, event.version, event.payload, event.id)
        if version == event.version:
            return event
        return event.model_copy(update={"payload": payload, "version": version})

    def include(self, other: Upcasters) -> None:
        """Take every step of another registry (of other event types) into this one."""
        for (event_type, from_version), step in other._steps.items():
            self.register(event_type, from_version, step)


def fold(
    events: Iterable[EventEnvelope],
    initial: State,
    apply: Callable[[State, EventEnvelope], State],
    upcasters: Upcasters | None = None,
) -> State:
    """The state a history leads to: each event, upcast, applied in order to `initial`."""
    state = initial
    for event in events:
        state = apply(state, upcasters.upcast(event) if upcasters else event)
    return state
