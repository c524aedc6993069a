"""How large one recorded event may be, so that every event fits a NATS message and a gRPC reply.

A fact over the limit is never recorded, and never cut silently: the decision that would record
it records instead why it could not (a step fails naming the size, the limit and the setting).
"""

from __future__ import annotations

from typing import Any

from rustchain.domain.plans.plan import canonical_json

MAX_EVENT_BYTES_SETTING = "RUSTCHAIN_MAX_EVENT_BYTES"
DEFAULT_MAX_EVENT_BYTES = 512 * 1024
"""Half of NATS's default max_payload (1 MiB): room for the envelope, subject and headers, and a
status or replay reply carrying a few such events stays far below gRPC's 4 MiB message limit."""
MIN_MAX_EVENT_BYTES = 16 * 1024
"""Below this, an ordinary plan's MissionStarted (which carries the whole plan) would not fit."""
ENVELOPE_ALLOWANCE_BYTES = 8 * 1024
"""What publishing adds to a payload: the envelope's fields, its hashes, the subject, headers."""
ERROR_EXCERPT_CHARS = 2000
"""How much of an over-large error text is kept, marked as an excerpt."""


class EventTooLargeError(ValueError):
    """A deployment whose NATS server cannot carry the events the deployment may record."""


def payload_bytes(payload: Any) -> int:
    """The size of a payload as stored and published: its canonical JSON in UTF-8."""
    return len(canonical_json(payload).encode("utf-8"))


def over_limit(what: str, size: int, limit: int) -> str:
    """Why a fact was not recorded: what was too large, by how much, and the setting to change."""
    return (
        f"{what} takes {size:,} bytes, more than the largest event this deployment records"
        f" ({limit:,} bytes, {MAX_EVENT_BYTES_SETTING})"
    )


def bounded_error(error: str, size: int, limit: int) -> str:
    """An error text small enough to record: itself, or a marked excerpt saying it was cut."""
    if size <= limit:
        return error
    return (
        over_limit("its error text", size, limit)
        + f". Its first {ERROR_EXCERPT_CHARS} characters: {error[:ERROR_EXCERPT_CHARS]}"
    )


def bounded_outputs(outputs: dict[str, Any], limit: int) -> dict[str, Any]:
    """A mission's outputs small enough to record together: when they are too large, each
    output larger than its share is replaced by a message saying so (its step's event has it)."""
    total = payload_bytes(outputs)
    if total <= limit:
        return outputs
    share = limit // (2 * len(outputs))
    bounded: dict[str, Any] = {}
    for name, value in outputs.items():
        size = payload_bytes(value)
        bounded[name] = (
            value
            if size <= share
            else f"not recorded here: {over_limit('the outputs together', total, limit)}; this"
            f" one takes {size:,} bytes, its step's own event holds it"
        )
    return bounded


def required_max_payload(max_event_bytes: int) -> int:
    """The smallest NATS max_payload that carries every event up to `max_event_bytes`."""
    return max_event_bytes + ENVELOPE_ALLOWANCE_BYTES


def check_max_payload(max_event_bytes: int, max_payload: int) -> None:
    """Refuse a NATS server whose max_payload is too small for the events recorded here."""
    needed = required_max_payload(max_event_bytes)
    if max_payload < needed:
        raise EventTooLargeError(
            f"the NATS server accepts messages of at most {max_payload:,} bytes (max_payload),"
            f" but events may be {max_event_bytes:,} bytes ({MAX_EVENT_BYTES_SETTING}) plus"
            f" {ENVELOPE_ALLOWANCE_BYTES:,} for the envelope: lower {MAX_EVENT_BYTES_SETTING} to"
            f" {max_payload - ENVELOPE_ALLOWANCE_BYTES:,} or less, or raise the server's"
            f" max_payload to {needed:,} or more"
        )
