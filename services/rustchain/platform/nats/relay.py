"""The outbox relay: a store's notification log into JetStream in order, no loss, no duplicates."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import PubAck

from rustchain.domain.events.size import DEFAULT_MAX_EVENT_BYTES, check_max_payload
from rustchain.platform.nats.artifact_relay import ArtifactUploader
from rustchain.platform.nats.jetstream import (
    MSG_ID_HEADER,
    NATS_ERRORS,
    NATS_OUTAGES,
    EventRoute,
    NatsUnavailableError,
    StreamSettings,
    connect,
    ensure_stream,
    whole_chain_head,
)
from rustchain.platform.nats.relay_acks import Chain, Pending, await_due_acks
from rustchain.platform.nats.relay_refusals import (
    DEFAULT_MAX_PAYLOAD,
    full_reason,
    message_size,
    probe,
    refusal_reason,
    too_large,
)
from rustchain.platform.nats.relay_tenants import (
    TenantLag,
    TenantLane,
    load_lane,
    refused_reader,
    tenant_reader,
)
from rustchain.platform.storage.artifact_store import ArtifactStore
from rustchain.platform.storage.event_store import EventStore, Notification, artifacts_beside
from rustchain.platform.telemetry.relay_lag import RelayLag

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
    # A paused tenant is retried after backoff_initial, doubling up to this.
    tenant_backoff_max: float = 30.0
    streams: StreamSettings = field(default_factory=StreamSettings)
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    """The deployment's largest event (RUSTCHAIN_MAX_EVENT_BYTES), checked against the server."""


@dataclass
class RelayStats:
    """What a relay has done since it started, and how far behind each tenant it has seen is."""

    published: int = 0
    duplicates: int = 0
    skipped: int = 0
    batches: int = 0
    outages: int = 0
    holes: int = 0
    """Chains found with events missing below their head in JetStream (a cluster's failover)."""
    tenants: dict[str, TenantLag] = field(default_factory=dict)

    def paused(self) -> dict[str, str]:
        """The tenants whose events wait for a retry, and why."""
        return {
            tenant: lag.paused_reason
            for tenant, lag in sorted(self.tenants.items())
            if lag.paused_reason is not None
        }


class JetStreamRelay:
    """Publishes each stored event once to its tenant's stream; tracks positions after acks.

    A position per tenant: when a tenant's stream refuses an event (full, event too large,
    stream gone), that tenant is paused and retried with back-off while the others go on. The
    relay's own position is the lowest of them: every event up to it is in JetStream.
    """

    def __init__(
        self,
        store: EventStore,
        nats_url: str,
        settings: RelaySettings | None = None,
        artifacts: ArtifactStore | None = None,
    ) -> None:
        self.store = store
        self.nats_url = nats_url
        self.settings = settings or RelaySettings()
        # The artifacts an event references go to the tenant's object store before the event.
        self.artifacts = ArtifactUploader(
            artifacts if artifacts is not None else artifacts_beside(store),
            self.settings.streams,
        )
        self.stats = RelayStats()
        self.position = store.tracked_position(self.settings.reader)
        self._sent = self.position
        # Each batch in flight: its last position, and each publish's ack and destination.
        self._in_flight: deque[tuple[int, list[Pending]]] = deque()
        # A previous run, or the connection before this one, may have sent this many events of
        # a tenant past its tracked position: they are checked against JetStream first.
        self._window = (self.settings.max_in_flight + 1) * self.settings.batch_size
        self._lanes: dict[str, TenantLane] = {}
        self._heads: dict[Chain, int] = {}
        # Each chain's publish in flight. A chain's next event is sent only once JetStream has
        # acknowledged this one: on a cluster, a publish lost with its stream's leader must not
        # be overtaken by the chain's later events (they would be stored before it).
        self._tails: dict[Chain, asyncio.Future[PubAck]] = {}
        self._client: Client | None = None
        self._js: JetStreamContext | None = None
        self._closed = asyncio.Event()
        self._streams: dict[str, int] = {}
        self.lag = RelayLag(self.settings.reader)

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
            self._tails.clear()
            self.artifacts.forget()
        return self._js

    def _lane(self, tenant: str) -> TenantLane:
        lane = self._lanes.get(tenant)
        if lane is None:
            lane = load_lane(self.store, self.settings.reader, tenant, self.position, self._window)
            self._lanes[tenant] = lane
            self.stats.tenants[tenant] = lane.lag
        return lane

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _refuse(self, lane: TenantLane, position: int, data: bytes, reason: str) -> None:
        if lane.pause(position, data, reason, self._now(), self.settings.backoff_initial):
            # Durable, so that a restart knows a later event may be in the stream before it.
            self.store.track_position(refused_reader(self.settings.reader, lane.tenant), position)

    async def _ensure_stream(self, js: JetStreamContext, tenant: str) -> int:
        """Make the tenant's stream if missing; its max_msg_size (-1: none)."""
        if tenant not in self._streams:
            name = await ensure_stream(js, tenant, self.settings.streams)
            info = await js.stream_info(name)
            self._streams[tenant] = info.config.max_msg_size or -1
        return self._streams[tenant]

    def _max_payload(self) -> int:
        return self._client.max_payload if self._client is not None else DEFAULT_MAX_PAYLOAD

    def _reason(self, error: BaseException, pending: Pending) -> str | None:
        return refusal_reason(error, pending.stream, pending.size, self._max_payload())

    async def _full_reason(self, stream: str, size: int) -> str | None:
        return None if self._js is None else await full_reason(self._js, stream, size)

    async def _await_acks(self, pending: list[Pending]) -> None:
        """Wait for every ack that is due; pause the tenants whose streams stay silent as full."""
        failed_at = {tenant: lane.failed_at for tenant, lane in self._lanes.items()}
        silent = await await_due_acks(pending, failed_at, self._closed, self.settings.ack_timeout)
        if silent is None:
            raise NatsUnavailableError(
                f"JetStream at {self.nats_url}: connection lost during a batch"
            )
        for tenant, first in silent.items():
            reason = await self._full_reason(first.stream, first.size)
            if reason is None:
                raise NatsUnavailableError(f"JetStream at {self.nats_url}: no ack in time")
            self._refuse(self._lanes[tenant], first.position, first.data, reason)

    async def _already_held(
        self, js: JetStreamContext, lane: TenantLane, route: EventRoute
    ) -> bool:
        """Whether an in-doubt event is in JetStream already, whatever its duplicate window.

        Only a chain JetStream holds whole up to its head is trusted; one with a hole (a
        cluster's leader lost publishes in flight) is sent again, its copies dropped by the
        Nats-Msg-Id duplicate window."""
        if lane.in_doubt <= 0:
            return False
        lane.in_doubt -= 1
        key = _chain(route)
        if key not in self._heads:
            head = await whole_chain_head(js, *key)
            if head is None:
                self.stats.holes += 1
                log.warning(
                    "relay: JetStream lacks events of %s/%s (%s) below the last it holds;"
                    " sending its unconfirmed events again (copies are dropped by Nats-Msg-Id)",
                    *key,
                )
            self._heads[key] = head or 0
        return route.sequence <= self._heads[key]

    async def _settle_oldest(self) -> None:
        last, pending = self._in_flight.popleft()
        try:
            await self._await_acks(pending)
            outcomes: list[PubAck | str | None] = []
            for p in pending:
                if not p.future.done() or p.future.cancelled():
                    outcomes.append(None)
                elif (error := p.future.exception()) is not None:
                    reason = self._reason(error, p)
                    if reason is None:
                        raise NatsUnavailableError(f"JetStream at {self.nats_url}: {error}")
                    outcomes.append(reason)
                else:
                    outcomes.append(p.future.result())
        finally:
            for p in pending:
                p.future.cancel()
                if self._tails.get(p.chain) is p.future:
                    del self._tails[p.chain]
        for p, outcome in zip(pending, outcomes, strict=True):
            lane = self._lanes[p.tenant]
            if isinstance(outcome, str):
                self._refuse(lane, p.position, p.data, outcome)
            elif isinstance(outcome, PubAck):
                if lane.failed_at is not None and p.position > lane.failed_at:
                    lane.acked_beyond.add(p.event_id)
                lane.lag.published += 1
                self.stats.published += 1
                self.stats.duplicates += int(bool(outcome.duplicate))
        self.stats.batches += 1
        self._track(last, {p.tenant for p in pending})

    def _track(self, last: int, touched: set[str]) -> None:
        """Record positions over a settled batch: each paused tenant's, and the lowest."""
        paused = [lane for lane in self._lanes.values() if lane.failed_at is not None]
        for lane in self._lanes.values():
            reached = last if lane.failed_at is None else min(last, lane.failed_at - 1)
            lane.position = max(lane.position, reached)
        low = min([last, *(lane.position for lane in paused)])
        if paused:
            # The relay's own position stays behind the paused tenants: the others record
            # theirs, so that a restart does not send their events again.
            for tenant in touched | {lane.tenant for lane in paused}:
                position = self._lanes[tenant].position
                self.store.track_position(tenant_reader(self.settings.reader, tenant), position)
        if low > self.position:
            self.store.track_position(self.settings.reader, low)
            self.position = low

    async def _retry_paused(self) -> None:
        """Send each due paused tenant's refused event alone; on success the tenant goes on."""
        now = self._now()
        due = [lane for lane in self._lanes.values() if lane.paused and lane.retry_at <= now]
        if not due:
            return
        js = await self._jetstream()
        while self._in_flight:
            await self._settle_oldest()
        for lane in due:
            if lane.failed_at is None:
                continue
            # Its stream may have been changed (limits raised, made again): read it afresh.
            self._streams.pop(lane.tenant, None)
            item = self.store.notifications(lane.failed_at - 1, 1)[0]
            route = EventRoute.of(item.data)
            reason = await self._probe(js, route, item.data)
            if reason is not None:
                lane.still_refused(reason, self._now(), self.settings.tenant_backoff_max)
                continue
            lane.resume(item.position)
            lane.lag.published += 1
            self.stats.published += 1
            self.store.track_position(
                tenant_reader(self.settings.reader, lane.tenant), item.position
            )
            # The tenant's events the cursor passed while it was paused are read again; every
            # other tenant's are skipped by their positions.
            self._sent = min(self._sent, item.position)

    async def _probe(self, js: JetStreamContext, route: EventRoute, data: bytes) -> str | None:
        """Publish one event and wait for its ack: None when stored, else why it was refused."""
        limit = await self._ensure_stream(js, route.tenant)
        self.artifacts.forget()
        refused = await self.artifacts.upload(js, route.tenant, data)
        if refused is not None:
            return refused
        outcome = await probe(
            js, route, data, self.settings.ack_timeout, self._max_payload(), limit
        )
        if outcome is None:
            raise NatsUnavailableError(f"JetStream at {self.nats_url}: no ack in time")
        if isinstance(outcome, str):
            return outcome
        self.stats.duplicates += int(bool(outcome.duplicate))
        return None

    async def _publish(
        self, js: JetStreamContext, lane: TenantLane, route: EventRoute, item: Notification
    ) -> Pending | None:
        """Send one event without waiting for its ack; None if its tenant is paused at it."""
        size = message_size(route, item.data)
        limit = await self._ensure_stream(js, route.tenant)
        reason = await self.artifacts.upload(js, route.tenant, item.data) or too_large(
            size, route.stream, self._max_payload(), limit
        )
        if reason is None:
            try:
                future = await js.publish_async(
                    route.subject, item.data, stream=route.stream, headers=route.headers
                )
            except nats.errors.MaxPayloadError as error:
                reason = refusal_reason(error, route.stream, size, self._max_payload())
        if reason is not None:
            self._refuse(lane, item.position, item.data, reason)
            lane.wait(item.position)
            return None
        event_id = route.headers[MSG_ID_HEADER]
        # The stream also counts the subject: a lower bound of what the event takes in it.
        stored = size + len(route.subject)
        self._tails[_chain(route)] = future
        tenant, position = route.tenant, item.position
        return Pending(
            tenant, position, _chain(route), event_id, route.stream, item.data, stored, future
        )

    async def _chain_acked(self, chain: Chain) -> bool:
        """Whether the chain's publish in flight, if any, is acknowledged (waiting up to the ack
        timeout): False if it was refused, lost, or the connection closed meanwhile."""
        tail = self._tails.get(chain)
        if tail is None:
            return True
        if not tail.done():
            lost: asyncio.Future[Any] = asyncio.ensure_future(self._closed.wait())
            waits: set[asyncio.Future[Any]] = {tail, lost}
            try:
                timeout = self.settings.ack_timeout
                await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                lost.cancel()
        return tail.done() and not tail.cancelled() and tail.exception() is None

    def _unsent(self, lane: TenantLane, item: Notification) -> bool:
        """Whether the event waits behind its tenant's refused one (and is noted as waiting)."""
        if lane.failed_at is not None and item.position >= lane.failed_at:
            lane.wait(item.position)
            return True
        return False

    async def relay_batch(self) -> int:
        """Publish the next batch, and advance the tracked positions over acked batches.

        Up to `max_in_flight` batches await their acks while the next one is read and sent;
        a position only ever moves over events JetStream acknowledged. A paused tenant's events
        are passed over, and read again once its refused event is published.
        """
        await self._retry_paused()
        batch = self.store.notifications(self._sent, self.settings.batch_size)
        if batch:
            js = await self._jetstream()
            pending: list[Pending] = []
            before = self._sent
            for item in batch:
                route = EventRoute.of(item.data)
                lane = self._lane(route.tenant)
                event_id = route.headers[MSG_ID_HEADER]
                if self._unsent(lane, item) or item.position <= lane.position:
                    continue
                if event_id in lane.acked_beyond or await self._already_held(js, lane, route):
                    self.stats.skipped += 1
                    continue
                if not await self._chain_acked(_chain(route)):
                    # The chain's previous event was refused or lost: settle everything sent
                    # so far (a refusal pauses its tenant, silence is an outage) before going on.
                    self._in_flight.append((before, pending))
                    pending = []
                    while self._in_flight:
                        await self._settle_oldest()
                    if self._unsent(lane, item):
                        continue
                published = await self._publish(js, lane, route, item)
                if published is not None:
                    pending.append(published)
                before = item.position
            self._in_flight.append((batch[-1].position, pending))
            self._sent = batch[-1].position
        while self._in_flight and (len(self._in_flight) > self.settings.max_in_flight or not batch):
            await self._settle_oldest()
        return len(batch)

    async def _drop_connection(self) -> None:
        # Unacked batches are sent again from the tracked positions, checked first.
        for _, pending in self._in_flight:
            for p in pending:
                p.future.cancel()
        self._in_flight.clear()
        self._tails.clear()
        self._sent = self.position
        for lane in self._lanes.values():
            lane.doubt(self._window)
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
                if self.lag.due():
                    self.lag.observe(self.store.last_position(), self.position)
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


def _chain(route: EventRoute) -> Chain:
    return (route.tenant, route.mission_id, route.service)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Wait up to `seconds`, returning early when `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
