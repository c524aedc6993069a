"""Why a tenant's stream refuses an event, told before publishing when the relay can know."""

from __future__ import annotations

import contextlib

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import PubAck

from rustchain.domain.access.quotas import STREAM_BYTES_SETTING
from rustchain.platform.nats.jetstream import NATS_ERRORS, EventRoute

# nats-server's default max_payload; the relay names the connection's own when it knows it.
DEFAULT_MAX_PAYLOAD = 1024 * 1024
# What JetStream says (code 10077, a store failure) of a stream at its limits, discard=new.
STREAM_FULL_ERRORS = ("maximum bytes exceeded", "maximum messages exceeded")
TOO_LARGE_ADVICE = (
    "it can never be published as it is, and the tenant's later events wait behind it;"
    " see docs/events.md 'An event too large to publish'"
)


# What headers add to an event: the status line, the route's headers and `Nats-Expected-Stream`,
# each line as `name: value` and CRLF, and the blank line that ends them.
_HEADER_BYTES = len("NATS/1.0\r\n\r\n") + len("Nats-Expected-Stream") + 4


def message_size(route: EventRoute, data: bytes) -> int:
    """The bytes JetStream counts against max_msg_size: headers (with the stream's) and data."""
    headers = sum(len(name) + len(value) + 4 for name, value in route.headers.items())
    return _HEADER_BYTES + headers + len(route.stream) + len(data)


def too_large_reason(size: int, limit: int, what: str) -> str:
    """Why an event over a size limit waits, and what lifts it."""
    return f"an event of {size} bytes is over {what} ({limit} bytes): {TOO_LARGE_ADVICE}"


def refusal_reason(error: BaseException, stream: str, size: int, max_payload: int) -> str | None:
    """Why a tenant's publish failed, if the failure is the tenant's alone (else None)."""
    if isinstance(error, nats.errors.MaxPayloadError):
        return too_large_reason(size, max_payload, "NATS's max_payload")
    if isinstance(error, nats.js.errors.NoStreamResponseError):
        # A stream deleted, or, on a cluster, one whose leader died and whose replicas are
        # electing another: either way its tenant waits and the others go on.
        return (
            f"no stream answers for {stream} (deleted, or its cluster is electing a leader);"
            " retried, and made again if missing"
        )
    if not isinstance(error, nats.js.errors.APIError) or error.err_code is None:
        # No JetStream error code: the server, not the stream, failed (an outage).
        return None
    if (error.description or "") in STREAM_FULL_ERRORS:
        return stream_full_reason(stream, f"{error.description}")
    return f"stream {stream} refused an event of {size} bytes: {error.description or error}"


def stream_full_reason(stream: str, state: str) -> str:
    """Why a stream at its quota holds its tenant's events back, and what lifts it."""
    return (
        f"stream {stream} is full ({state}); its tenant's events wait in the event store until"
        f" its quota ({STREAM_BYTES_SETTING}) is raised or the stream is purged"
    )


async def full_reason(js: JetStreamContext, stream: str, size: int) -> str | None:
    """Why a stream cannot take an event of `size` bytes, if it is at its limits.

    A stream at its limits with discard=new refuses a publish, but the server answers only
    the first of a pipelined run of refusals, so the others look like a silent server.
    """
    with contextlib.suppress(*NATS_ERRORS):
        info = await js.stream_info(stream)
        limit, held = info.config.max_bytes or -1, info.state.bytes
        max_msgs = info.config.max_msgs or -1
        if 0 < limit < held + size or 0 < max_msgs <= info.state.messages:
            return stream_full_reason(
                stream, f"{held} of {limit} bytes, {info.state.messages} events"
            )
    return None


def too_large(size: int, stream: str, max_payload: int, max_msg_size: int) -> str | None:
    """Why an event can never be published as it is, told before sending it.

    Sent, it would close the connection (over max_payload) or be refused while later, smaller
    events of its tenant are stored before it (over the stream's max_msg_size).
    """
    if size > max_payload:
        return too_large_reason(size, max_payload, "NATS's max_payload")
    if 0 < max_msg_size < size:
        return too_large_reason(size, max_msg_size, f"the max_msg_size of {stream}")
    return None


async def probe(
    js: JetStreamContext,
    route: EventRoute,
    data: bytes,
    timeout: float,
    max_payload: int,
    max_msg_size: int,
) -> PubAck | str | None:
    """Publish one event and wait: its ack, why its stream refused it, or None (no answer)."""
    size = message_size(route, data)
    reason = too_large(size, route.stream, max_payload, max_msg_size)
    if reason is not None:
        return reason
    try:
        return await js.publish(
            route.subject, data, timeout=timeout, stream=route.stream, headers=route.headers
        )
    except nats.errors.TimeoutError:
        return await full_reason(js, route.stream, size)
    except (nats.errors.MaxPayloadError, nats.js.errors.Error) as error:
        reason = refusal_reason(error, route.stream, size, max_payload)
        if reason is None:
            raise
        return reason
