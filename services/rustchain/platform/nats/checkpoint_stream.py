"""Publishing each store's signed checkpoints to JetStream, and reading the latest back.

Checkpoints go to a stream of their own beside the tenant's events (`checkpoint_stream_name`):
every reader of the events stream decodes each message as an event, and checkpoints must outlive
the events' age and size limits. A copy outside the store is what lets an auditor without a saved
file still catch someone who rewrote the store and deleted its kept checkpoints.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StreamConfig

from rustchain.domain.events.checkpoint import Checkpoint
from rustchain.domain.events.names import (
    CHECKPOINT_SUBJECT_ROOT,
    checkpoint_stream_name,
    checkpoint_subject,
    validate_tenant,
)
from rustchain.platform.nats.jetstream import NATS_ERRORS, NATS_OUTAGES, connect

log = logging.getLogger(__name__)

KEPT_PER_STORE = 100_000
"""Checkpoints kept per (tenant, store) subject; the oldest go first."""


async def ensure_checkpoint_stream(js: JetStreamContext, tenant: str, replicas: int = 1) -> str:
    """Create the tenant's checkpoint stream if it does not exist yet (kept on `replicas`
    servers of a cluster); its name."""
    name = checkpoint_stream_name(tenant)
    try:
        await js.stream_info(name)
    except nats.js.errors.NotFoundError:
        subjects = [f"{CHECKPOINT_SUBJECT_ROOT}.{validate_tenant(tenant)}.>"]
        config = StreamConfig(
            name=name,
            subjects=subjects,
            max_msgs_per_subject=KEPT_PER_STORE,
            discard=DiscardPolicy.OLD,
            num_replicas=replicas,
        )
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError:
            await js.stream_info(name)  # made meanwhile by another relay, else this raises
    return name


class CheckpointPublisher:
    """Publishes checkpoints to JetStream over a connection of its own, kept between calls."""

    def __init__(self, url: str, replicas: int = 1) -> None:
        self._url = url
        self._replicas = replicas
        self._client: Client | None = None
        self._pending: list[Checkpoint] = []

    async def publish(self, checkpoints: Iterable[Checkpoint]) -> None:
        """Publish these and any left from an outage; on an outage keep them for next time."""
        self._pending += checkpoints
        if not self._pending:
            return
        try:
            if self._client is None or self._client.is_closed:
                self._client = await connect(self._url)
            js = self._client.jetstream()
            while self._pending:
                checkpoint = self._pending[0]
                stream = await ensure_checkpoint_stream(js, checkpoint.tenant, self._replicas)
                subject = checkpoint_subject(checkpoint.tenant, checkpoint.store)
                await js.publish(subject, checkpoint.note().encode(), stream=stream)
                self._pending.pop(0)
        except NATS_OUTAGES as error:
            log.warning(
                "%d checkpoint(s) not published to %s yet: %s", len(self._pending), self._url, error
            )
            await self.close()

    async def close(self) -> None:
        """Close the connection, if any."""
        client, self._client = self._client, None
        if client is not None and not client.is_closed:
            with contextlib.suppress(*NATS_ERRORS):
                await client.close()


async def latest_published(url: str, tenant: str, stores: Iterable[str]) -> list[str]:
    """The latest checkpoint note each store published for the tenant (none when never)."""
    client = await connect(url)
    try:
        js = client.jetstream()
        notes: list[str] = []
        for store in stores:
            try:
                message = await js.get_last_msg(
                    checkpoint_stream_name(tenant), checkpoint_subject(tenant, store)
                )
            except nats.js.errors.NotFoundError:
                continue
            if message.data:
                notes.append(message.data.decode("utf-8", errors="replace"))
        return notes
    finally:
        await client.close()
