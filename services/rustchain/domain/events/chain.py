"""Chain verification: proves a history whole and untouched, or names the first broken event."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rustchain.domain.events.envelope import GENESIS_HASH, EventEnvelope


@dataclass(frozen=True)
class ChainBreak:
    """The first event at which a history stops being whole and untouched, and why."""

    event_id: str
    position: int
    tenant: str
    mission_id: str
    reason: str

    def describe(self) -> str:
        """One line naming the broken event and what is wrong with it."""
        return (
            f"event {self.event_id} (position {self.position} of mission"
            f" {self.tenant}/{self.mission_id}): {self.reason}"
        )


def _break(event: EventEnvelope, position: int, reason: str) -> ChainBreak:
    return ChainBreak(event.id, position, event.tenant, event.mission_id, reason)


def _link_error(event: EventEnvelope, head: EventEnvelope | None) -> str | None:
    expected_sequence = 1 if head is None else head.sequence + 1
    expected_previous = GENESIS_HASH if head is None else head.hash
    after = "at the start of the mission" if head is None else f"after event {head.id}"
    if event.sequence != expected_sequence:
        kind = "missing" if event.sequence > expected_sequence else "repeated or reordered"
        return (
            f"expected sequence {expected_sequence} {after}, found {event.sequence}:"
            f" an event is {kind}"
        )
    if event.previous_hash != expected_previous:
        return f"previous_hash does not match the hash of the event {after}"
    return None


def verify_chain(events: Iterable[EventEnvelope]) -> ChainBreak | None:
    """None when every mission's events, in the order given, form whole untouched chains."""
    heads: dict[tuple[str, str], EventEnvelope] = {}
    counts: dict[tuple[str, str], int] = {}
    for event in events:
        key = event.chain_key
        position = counts.get(key, 0) + 1
        counts[key] = position
        if event.computed_hash() != event.hash:
            return _break(event, position, "altered: its content does not match its hash")
        problem = _link_error(event, heads.get(key))
        if problem is not None:
            return _break(event, position, problem)
        heads[key] = event
    return None
