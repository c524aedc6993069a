"""Reading JetStream's copy of a history, to compare with the stores
(domain/runs/stream_agreement)."""

from __future__ import annotations

import asyncio

import nats.js.errors

from rustchain.domain.events.envelope import EventEnvelope
from rustchain.platform.nats.jetstream import (
    NATS_ERRORS,
    NatsUnavailableError,
    connect,
    ensure_readable,
    read_events,
)


async def _read(url: str, tenant: str, mission_id: str | None) -> list[EventEnvelope]:
    client = await connect(url)
    try:
        try:
            # A credential refused this tenant's stream says so (NatsPermissionError) at once.
            await ensure_readable(client, tenant)
            return [m.event async for m in read_events(client.jetstream(), tenant, mission_id)]
        except nats.js.errors.NotFoundError:
            return []  # no stream: the tenant's events were never relayed
    finally:
        await client.close()


def stream_events(url: str, tenant: str, mission_id: str | None = None) -> list[EventEnvelope]:
    """A tenant's (or one mission's) events as its JetStream stream holds them, in stream order.

    Raises NatsUnavailableError when NATS or JetStream cannot be reached or stops answering.
    """
    try:
        return asyncio.run(_read(url, tenant, mission_id))
    except NatsUnavailableError:
        raise
    except NATS_ERRORS as error:
        reason = str(error) or type(error).__name__
        raise NatsUnavailableError(f"JetStream at {url} failed: {reason}") from error
