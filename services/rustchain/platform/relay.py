"""The outbox relay: a store's notification log into JetStream in order, no loss, no duplicates."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import PubAck

from rustchain.domain.event_size import DEFAULT_MAX_EVENT_BYTES, check_max_payload
from rustchain.domain.quotas import STREAM_BYTES_SETTING
from rustchain.platform.event_store import EventStore
from rustchain.platform.jetstream import (
    NATS_ERRORS,
    NATS_OUTAGES,
    EventRoute,
    NatsUnavailableError,
    StreamQuotaError,
    StreamSettings,
    connect,
    ensure_stream,
    last_published_sequence,
)

log = logging.getLogger(__name__)
DEFAULT_READER = "jetstream_relay"


@dataclass(frozen=True)
class RelaySettings:
    """Batch size, ack timeout and back-off of a relay, and the limits of the streams it makes."""

    reader: str = DEFAULT_READER
    batch_size: int = 1000
    max_in_flight: int = 2
    ack_timeout: float = 10.0
    idle_poll: float = 0.05
    backoff_initial: float = 0.05
    backoff_max: float = 2.0
    streams: StreamSettings = field(default_factory=StreamSettings)
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    """The deployment's largest event (RUSTCHAIN_MAX_EVENT_BYTES), checked against the server."""


@dataclass
class RelayStats:
    """What a relay has done since it started."""

    published: int = 0
    duplicates: int = 0
    skipped: int = 0
    batches: int = 0
    outages: int = 0


@dataclass(frozen=True)
class Sent:
    """Where a publish in flight went, and a lower bound of the bytes it takes in the stream."""

    stream: str
    size: int


class JetStreamRelay:
    """Publishes each stored event once to its tenant's stream; tracks its position after acks."""

    def __init__(
        self,
        store: EventStore,
        nats_url: str,
        settings: RelaySettings | None = None,
    ) -> None:
        self.store = store
        self.nats_url = nats_url
        self.settings = settings or RelaySettings()
        self.stats = RelayStats()
        self.position = store.tracked_position(self.settings.reader)
        self._sent = self.position
        # Each batch in flight: its last position, and each publish's ack and destination.
        self._in_flight: deque[tuple[int, list[asyncio.Future[PubAck]], list[Sent]]] = deque()
        # A previous run, or the connection before this one, may have sent this many events
        # past the tracked position: they are checked against JetStream before being sent again.
        self._window = (self.settings.max_in_flight + 1) * self.settings.batch_size
        self._in_doubt = self._window
        self._heads: dict[tuple[str, str, str], int] = {}
        self._client: Client | None = None
        self._js: JetStreamContext | None = None
        self._closed = asyncio.Event()
        self._streams: set[str] = set()

    async def _jetstream(self) -> JetStreamContext:
        if self._client is None or self._client.is_closed or self._js is None:
            # Not a reconnecting client: losing the server closes it and ends the ack wait.
            self._closed = asyncio.Event()
            client = await connect(self.nats_url, closed=self._closed)
            self._client = client
            # A server that cannot carry the largest event would stop the relay at that event.
            check_max_payload(self.settings.max_event_bytes, client.max_payload)
            # Room for every batch awaiting acks and the one being sent, so that a publish
            # never waits for the semaphore (a wait there would also cost a task per event).
            window = self._window + self.settings.batch_size
            self._js = client.jetstream(publish_async_max_pending=window)
            self._streams.clear()
            self._heads.clear()
        return self._js

    async def _ensure_streams(self, js: JetStreamContext, tenants: set[str]) -> None:
        for tenant in tenants:
            if tenant not in self._streams:
                await ensure_stream(js, tenant, self.settings.streams)
                self._streams.add(tenant)

    async def _await_acks(
        self, futures: list[asyncio.Future[PubAck]], sent: list[Sent]
    ) -> list[PubAck]:
        acks: asyncio.Future[list[PubAck]] = asyncio.ensure_future(asyncio.gather(*futures))
        lost: asyncio.Future[bool] = asyncio.ensure_future(self._closed.wait())
        try:
            waits: set[asyncio.Future[Any]] = {acks, lost}
            done, _ = await asyncio.wait(
                waits,
                timeout=self.settings.ack_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            lost.cancel()
        if acks in done:
            return acks.result()
        try:
            if lost not in done:
                await self._raise_if_full(futures, sent)
        finally:
            acks.cancel()
        reason = "connection lost" if lost in done else "no ack in time"
        raise NatsUnavailableError(f"JetStream at {self.nats_url}: {reason} during a batch")

    async def _raise_if_full(self, futures: list[asyncio.Future[PubAck]], sent: list[Sent]) -> None:
        """Raise StreamQuotaError if the first unacknowledged publish cannot fit in its stream.

        A stream at its limits with discard=new refuses a publish, but the server answers only
        the first of a pipelined run of refusals, so the others look like a silent server.
        """
        first = next((s for f, s in zip(futures, sent, strict=True) if not f.done()), None)
        if first is None or self._js is None:
            return
        with contextlib.suppress(*NATS_ERRORS):
            info = await self._js.stream_info(first.stream)
            limit, held = info.config.max_bytes or -1, info.state.bytes
            max_msgs = info.config.max_msgs or -1
            if 0 < limit < held + first.size or 0 < max_msgs <= info.state.messages:
                raise StreamQuotaError(
                    f"stream {first.stream} is full ({held} of {limit} bytes,"
                    f" {info.state.messages} events); its tenant's events wait in the event"
                    f" store until its quota ({STREAM_BYTES_SETTING}) is raised or the stream is"
                    " purged"
                )

    async def _already_held(self, js: JetStreamContext, routes: list[EventRoute]) -> set[int]:
        """Indexes of in-doubt events JetStream holds already, whatever its duplicate window."""
        checked = routes[: self._in_doubt]
        held = set()
        for index, route in enumerate(checked):
            key = (route.tenant, route.mission_id, route.service)
            if key not in self._heads:
                self._heads[key] = await last_published_sequence(js, *key)
            if route.sequence <= self._heads[key]:
                held.add(index)
        self._in_doubt -= len(checked)
        return held

    async def _settle_oldest(self) -> None:
        last, futures, sent = self._in_flight.popleft()
        acks = await self._await_acks(futures, sent)
        self.store.track_position(self.settings.reader, last)
        self.position = last
        self.stats.batches += 1
        self.stats.published += len(acks)
        self.stats.duplicates += sum(1 for ack in acks if ack.duplicate)

    async def relay_batch(self) -> int:
        """Publish the next batch, and advance the tracked position over acked batches.

        Up to `max_in_flight` batches await their acks while the next one is read and sent;
        the position only ever moves over a batch whose every event JetStream acknowledged.
        """
        batch = self.store.notifications(self._sent, self.settings.batch_size)
        if batch:
            js = await self._jetstream()
            routes = [EventRoute.of(item.data) for item in batch]
            await self._ensure_streams(js, {route.tenant for route in routes})
            held = await self._already_held(js, routes)
            sent = [
                (route, item)
                for index, (route, item) in enumerate(zip(routes, batch, strict=True))
                if index not in held
            ]
            futures = [
                await js.publish_async(
                    route.subject,
                    item.data,
                    stream=route.stream,
                    headers=route.headers,
                )
                for route, item in sent
            ]
            self.stats.skipped += len(held)
            destinations = [
                Sent(route.stream, len(route.subject) + len(item.data)) for route, item in sent
            ]
            self._in_flight.append((batch[-1].position, futures, destinations))
            self._sent = batch[-1].position
        while self._in_flight and (len(self._in_flight) > self.settings.max_in_flight or not batch):
            await self._settle_oldest()
        return len(batch)

    async def _drop_connection(self) -> None:
        # Unacked batches are sent again from the tracked position, checked first.
        self._in_flight.clear()
        self._sent = self.position
        self._in_doubt = self._window
        client, self._client, self._js = self._client, None, None
        if client is not None and not client.is_closed:
            with contextlib.suppress(*NATS_ERRORS):
                await client.close()

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set; during a NATS outage, back off and catch up afterwards."""
        delay = self.settings.backoff_initial
        try:
            while not stop.is_set():
                try:
                    sent = await self.relay_batch()
                except NATS_OUTAGES as error:
                    self.stats.outages += 1
                    log.warning("relay to %s paused %.2f s: %s", self.nats_url, delay, error)
                    await self._drop_connection()
                    await _wait(stop, delay)
                    delay = min(delay * 2, self.settings.backoff_max)
                    continue
                delay = self.settings.backoff_initial
                if sent == 0:
                    await _wait(stop, self.settings.idle_poll)
            await self._settle_all()
        finally:
            await self._drop_connection()

    async def _settle_all(self) -> None:
        """On a clean stop, record the batches already sent; unsettled ones are sent again."""
        try:
            while self._in_flight:
                await self._settle_oldest()
        except NATS_OUTAGES as error:
            log.warning(
                "relay to %s stopped with unacked events to resend: %s", self.nats_url, error
            )

    async def catch_up(self, timeout: float) -> None:
        """Relay until the position reaches the store's last event, or raise TimeoutError."""
        stop = asyncio.Event()
        runner = asyncio.ensure_future(self.run(stop))
        try:
            async with asyncio.timeout(timeout):
                while self.position < self.store.last_position():
                    if runner.done():
                        runner.result()
                    await _wait(stop, self.settings.idle_poll)
        finally:
            stop.set()
            await runner


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Wait up to `seconds`, returning early when `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
