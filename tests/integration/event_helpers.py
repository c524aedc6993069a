"""Test events for the integration tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import nats.js.errors

from rustchain.domain.events.envelope import EventDraft
from rustchain.domain.events.names import stream_name
from rustchain.platform.nats.jetstream import StoredMessage, connect, read_events
from rustchain.platform.storage.event_store import EventStore

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def make_draft(n: int, mission: str = "m1", tenant: str = "acme", **changes: Any) -> EventDraft:
    """The n-th test event of a mission."""
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "tenant": tenant,
        "mission_id": mission,
        "service": "executor",
        "aggregate_id": mission,
        "aggregate_version": n,
        "type": "StepSucceeded",
        "occurred_at": T0 + timedelta(milliseconds=n),
        "payload": {"n": n, "mission": mission},
    }
    fields.update(changes)
    return EventDraft(**fields)


def many_drafts(
    count: int, tenants: tuple[str, ...] = ("acme",), missions: int = 10
) -> list[EventDraft]:
    """`count` events spread round-robin over the tenants' missions."""
    drafts = []
    for n in range(count):
        tenant = tenants[n % len(tenants)]
        mission = f"m{(n // len(tenants)) % missions}"
        drafts.append(make_draft(n + 1, mission, tenant))
    return drafts


def append_in_batches(store: EventStore, drafts: list[EventDraft], size: int = 1000) -> None:
    """Append drafts in transactions of `size` events."""
    for start in range(0, len(drafts), size):
        store.append(drafts[start : start + size])


async def stream_messages(url: str, tenant: str) -> list[StoredMessage]:
    """Everything a tenant's stream holds, in stream order."""
    client = await connect(url)
    try:
        return [m async for m in read_events(client.jetstream(), tenant)]
    finally:
        await client.close()


async def stream_count(url: str, tenant: str) -> int:
    """How many messages a tenant's stream holds (0 if it does not exist yet)."""
    client = await connect(url)
    try:
        info = await client.jetstream().stream_info(stream_name(tenant))
        return info.state.messages
    except nats.js.errors.NotFoundError:
        return 0
    finally:
        await client.close()


def assert_stream_matches_store(
    messages: list[StoredMessage], store: EventStore, tenant: str, missions: list[str]
) -> None:
    """JetStream holds exactly the store's events of the tenant, each once, in mission order."""
    ids = [m.event.id for m in messages]
    assert len(ids) == len(set(ids)), "an event is in JetStream more than once"
    assert all(m.msg_id == m.event.id for m in messages)
    assert {m.event.tenant for m in messages} <= {tenant}
    assert {m.event.mission_id for m in messages} <= set(missions)
    for mission in missions:
        expected = store.mission_events(tenant, mission)
        relayed = [m.event for m in messages if m.event.mission_id == mission]
        assert expected, f"mission {mission} has no stored events"
        assert relayed == expected, f"mission {mission}: JetStream differs from the store"
