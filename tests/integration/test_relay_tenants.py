"""Per-tenant relay positions: a stream that refuses events delays its own tenant only."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable

import pytest

from rustchain.platform.nats.jetstream import StreamSettings, connect, stream_config
from rustchain.platform.nats.relay import DEFAULT_READER, JetStreamRelay, RelaySettings
from rustchain.platform.nats.relay_tenants import tenant_reader
from rustchain.platform.nats.server import NatsServer
from rustchain.platform.storage.event_store import EventStore, EventStoreSettings, open_event_store
from tests.conditions import wait_until
from tests.integration.event_helpers import (
    append_in_batches,
    assert_stream_matches_store,
    make_draft,
    many_drafts,
    stream_count,
    stream_messages,
)

MISSIONS = [f"m{n}" for n in range(10)]
# Three of beta's events for one of alpha's: beta fills a quota that alpha's events fit in.
BETA_HEAVY = ("beta", "beta", "beta", "alpha")
QUOTA = StreamSettings(max_bytes=50_000)


def _fast(streams: StreamSettings | None = None) -> RelaySettings:
    """Small batches and short back-offs, so that pauses and retries happen within a test."""
    return RelaySettings(
        batch_size=50,
        ack_timeout=5.0,
        backoff_max=0.2,
        tenant_backoff_max=0.2,
        streams=streams or StreamSettings(),
    )


def _counts(store: EventStore, tenant: str) -> int:
    return sum(len(store.mission_events(tenant, mission)) for mission in MISSIONS)


async def _relay_until(
    relay: JetStreamRelay, condition: Callable[[], bool], what: str, timeout: float = 60
) -> None:
    """Run the relay until `condition` holds, then stop it as a restart would."""
    stop = asyncio.Event()
    running = asyncio.ensure_future(relay.run(stop))
    try:
        await wait_until(lambda: condition() or running.done(), timeout, what)
        if running.done():
            running.result()
    finally:
        stop.set()
        await running


def _published(relay: JetStreamRelay, tenant: str) -> int:
    lag = relay.stats.tenants.get(tenant)
    return 0 if lag is None else lag.published


def test_a_full_stream_delays_its_tenant_only_and_no_event_is_lost_or_repeated_across_restarts(
    nats_server: NatsServer,
    store_settings: EventStoreSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = open_event_store(store_settings)
    append_in_batches(store, many_drafts(240, tenants=BETA_HEAVY), size=40)
    quota = _fast(QUOTA)
    url = nats_server.url

    try:
        first = JetStreamRelay(store, url, quota)
        with caplog.at_level(logging.WARNING):
            asyncio.run(
                _relay_until(
                    first,
                    lambda: _published(first, "alpha") == 60 and "beta" in first.stats.paused(),
                    "alpha's events are published while beta is paused",
                )
            )
        assert "relay paused tenant 'beta'" in caplog.text
        assert "stream RUSTCHAIN_BETA is full" in caplog.text
        assert asyncio.run(stream_count(url, "alpha")) == 60
        held_beta = asyncio.run(stream_count(url, "beta"))
        assert 0 < held_beta < 180
        assert store.tracked_position(DEFAULT_READER) < store.last_position()
        assert store.tracked_position(tenant_reader(DEFAULT_READER, "alpha")) > 0

        # A restart while beta is still full: alpha's new events go on, beta's still wait.
        append_in_batches(store, many_drafts(40, tenants=BETA_HEAVY), size=40)
        second = JetStreamRelay(store, url, quota)
        asyncio.run(
            _relay_until(
                second,
                lambda: _published(second, "alpha") == 10 and "beta" in second.stats.paused(),
                "alpha's new events are published while beta is still paused",
            )
        )
        assert asyncio.run(stream_count(url, "beta")) == held_beta
        lag = second.stats.tenants["beta"]
        assert lag.paused_reason is not None and lag.waiting > 0
        assert lag.seconds_behind() > 0

        # The quota raised: beta's events arrive in order, each once, none lost.
        raised = _fast(StreamSettings(max_bytes=10_000_000))
        third = JetStreamRelay(store, url, raised)
        asyncio.run(third.catch_up(timeout=60))
        assert third.stats.paused() == {}
        for tenant in ("alpha", "beta"):
            messages = asyncio.run(stream_messages(url, tenant))
            assert len(messages) == _counts(store, tenant)
            assert_stream_matches_store(messages, store, tenant, MISSIONS)
        assert store.tracked_position(DEFAULT_READER) == store.last_position()
    finally:
        store.close()


def test_a_stream_that_refuses_every_event_pauses_its_tenant_until_it_is_fixed(
    nats_server: NatsServer, sqlite_settings: EventStoreSettings
) -> None:
    store = open_event_store(sqlite_settings)
    append_in_batches(store, many_drafts(300, tenants=("alpha", "beta")), size=50)
    url = nats_server.url

    async def refuse_then_fix() -> JetStreamRelay:
        client = await connect(url)
        js = client.jetstream()
        tiny = dataclasses.replace(stream_config("beta", StreamSettings()), max_msg_size=64)
        await js.add_stream(tiny)
        relay = JetStreamRelay(store, url, _fast())
        stop = asyncio.Event()
        running = asyncio.ensure_future(relay.run(stop))
        try:
            await wait_until(
                lambda: _published(relay, "alpha") == 150 and "beta" in relay.stats.paused(),
                60,
                "alpha's events are all published while beta is paused",
            )
            assert await stream_count(url, "beta") == 0
            assert "max_msg_size of RUSTCHAIN_BETA" in relay.stats.paused()["beta"]
            await js.update_stream(stream_config("beta", StreamSettings()))
            await wait_until(lambda: relay.position == store.last_position(), 60, "beta catches up")
        finally:
            stop.set()
            await running
            await client.close()
        return relay

    try:
        relay = asyncio.run(refuse_then_fix())
        assert relay.stats.paused() == {}
        assert relay.stats.tenants["beta"].published == 150
        for tenant in ("alpha", "beta"):
            messages = asyncio.run(stream_messages(url, tenant))
            assert len(messages) == 150
            assert_stream_matches_store(messages, store, tenant, MISSIONS)
    finally:
        store.close()


def test_an_event_over_the_max_payload_pauses_its_tenant_with_what_to_do(
    nats_server: NatsServer, sqlite_settings: EventStoreSettings
) -> None:
    store = open_event_store(sqlite_settings)
    drafts = many_drafts(20, tenants=("alpha", "beta"), missions=1)
    huge = make_draft(100, "m0", "beta", payload={"output": "x" * 1_100_000})
    later = many_drafts(20, tenants=("alpha", "beta"), missions=1)
    append_in_batches(store, [*drafts, huge, *later], size=10)
    url = nats_server.url

    async def relay_past_it() -> JetStreamRelay:
        relay = JetStreamRelay(store, url, _fast())
        await _relay_until(
            relay,
            lambda: (
                _published(relay, "alpha") == 20
                and _published(relay, "beta") == 10
                and "beta" in relay.stats.paused()
            ),
            "alpha's events are published while beta waits behind its large event",
        )
        return relay

    try:
        relay = asyncio.run(relay_past_it())
        reason = relay.stats.paused()["beta"]
        assert "over NATS's max_payload" in reason
        assert "docs/events.md" in reason
        assert asyncio.run(stream_count(url, "beta")) == 10
        assert relay.stats.tenants["beta"].waiting == 11
        assert relay.position < store.last_position()
    finally:
        store.close()


def test_an_event_refused_while_later_smaller_ones_fit_is_not_overtaken_nor_lost(
    nats_server: NatsServer, sqlite_settings: EventStoreSettings
) -> None:
    store = open_event_store(sqlite_settings)
    small = [make_draft(n, "m0", "beta") for n in range(1, 6)]
    large = make_draft(6, "m0", "beta", payload={"output": "x" * 4000})
    later = [make_draft(n, "m0", "beta") for n in range(7, 12)]
    alpha = many_drafts(5, tenants=("alpha",), missions=1)
    append_in_batches(store, [*small, large, *later, *alpha], size=100)
    url = nats_server.url

    try:
        # Room for the small events but not the large one: the chain's later, smaller events
        # would fit, but each waits for its previous event's ack, so none overtakes the refused one.
        first = JetStreamRelay(store, url, _fast(StreamSettings(max_bytes=6_000)))
        asyncio.run(
            _relay_until(
                first,
                lambda: _published(first, "alpha") == 5 and "beta" in first.stats.paused(),
                "beta is paused at its large event",
            )
        )
        ids = [m.event.id for m in asyncio.run(stream_messages(url, "beta"))]
        assert ids == [d.id for d in small]

        restarted = JetStreamRelay(store, url, _fast(StreamSettings(max_bytes=10_000_000)))
        asyncio.run(restarted.catch_up(timeout=60))
        ids = [m.event.id for m in asyncio.run(stream_messages(url, "beta"))]
        assert ids == [d.id for d in [*small, large, *later]]
    finally:
        store.close()
