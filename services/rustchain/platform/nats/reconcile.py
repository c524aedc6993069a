"""Reconciliation: the store is the truth, so whatever JetStream lacks is published again."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import nats.js.errors
from nats.js import JetStreamContext

from rustchain.domain.events.envelope import EventEnvelope
from rustchain.domain.events.names import stream_name
from rustchain.platform.nats.artifact_relay import ArtifactUploader, ArtifactUploadError
from rustchain.platform.nats.jetstream import (
    StreamSettings,
    ensure_stream,
    event_headers,
    read_events,
)
from rustchain.platform.storage.event_store import EventStore, artifacts_beside, stored_events

PAGE = 1000


@dataclass(frozen=True)
class TenantReconciliation:
    """What reconciling one tenant's events of one store found and did."""

    tenant: str
    stored: int
    in_jetstream: int
    republished: int
    deduplicated: int
    """Re-published events JetStream dropped as copies: its dedup window still knew their ids."""


async def _ids_in_stream(js: JetStreamContext, tenant: str) -> set[str]:
    try:
        return {message.event.id async for message in read_events(js, tenant)}
    except nats.js.errors.NotFoundError:
        return set()


async def reconcile(
    store: EventStore, js: JetStreamContext, settings: StreamSettings, ack_timeout: float = 30.0
) -> list[TenantReconciliation]:
    """Publish every stored event its tenant's stream lacks (deduplicated by Nats-Msg-Id)."""
    by_tenant: dict[str, list[EventEnvelope]] = {}
    for event in stored_events(store):
        by_tenant.setdefault(event.tenant, []).append(event)
    results = []
    uploader = ArtifactUploader(artifacts_beside(store), settings)
    for tenant, events in sorted(by_tenant.items()):
        present = await _ids_in_stream(js, tenant)
        missing = [event for event in events if event.id not in present]
        copies = 0
        if missing:
            await ensure_stream(js, tenant, settings)
            # As the relay does: the artifacts an event references are in the bucket before it.
            for event in missing:
                refused = await uploader.upload(js, tenant, event.to_json().encode("utf-8"))
                if refused is not None:
                    raise ArtifactUploadError(f"tenant {tenant}: {refused}")
            acks = [
                await js.publish_async(
                    event.subject,
                    event.to_json().encode("utf-8"),
                    stream=stream_name(tenant),
                    headers=event_headers(event),
                )
                for event in missing
            ]
            done = await asyncio.wait_for(asyncio.gather(*acks), ack_timeout)
            copies = sum(1 for ack in done if ack.duplicate)
        results.append(
            TenantReconciliation(tenant, len(events), len(present), len(missing), copies)
        )
    return results
