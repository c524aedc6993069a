"""Event path throughput: store appends, the relay into JetStream, and raw JetStream publishing.

Goal (issue 4): the relay at 50% or more of the raw pipelined JetStream rate. Each nats-server
figure is taken twice, with fsync before every ack (`always`, our default) and with the server's
lazy default (a flush every two minutes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from rustchain.domain.events.envelope import EventDraft
from rustchain.platform.nats.jetstream import (
    StreamSettings,
    connect,
    ensure_stream,
    event_headers,
    stream_config,
)
from rustchain.platform.nats.relay import JetStreamRelay, RelaySettings
from rustchain.platform.nats.server import LAZY_SYNC, SYNC_ALWAYS, NatsServer, NatsServerSettings
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store

T0 = datetime(2026, 11, 25, tzinfo=UTC)
APPEND_EVENTS = 20_000
SINGLE_EVENTS = 500
RELAY_EVENTS = 20_000
RAW_MESSAGES = 20_000
TENANTS = 10
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _drafts(count: int, tenant: str = "bench") -> list[EventDraft]:
    return [
        EventDraft(
            id=str(uuid.uuid4()),
            tenant=tenant,
            mission_id=f"m{n % 20}",
            service="executor",
            aggregate_id=f"m{n % 20}",
            aggregate_version=n + 1,
            type="StepSucceeded",
            occurred_at=T0 + timedelta(microseconds=n),
            payload={"step": f"s{n}", "output": "x" * 200, "exit_code": 0},
        )
        for n in range(count)
    ]


def _append_rates(settings: EventStoreSettings) -> tuple[float, float]:
    store = open_event_store(settings)
    try:
        singles = _drafts(SINGLE_EVENTS, "single")
        start = time.perf_counter()
        for draft in singles:
            store.append([draft])
        single = SINGLE_EVENTS / (time.perf_counter() - start)
        batched = _drafts(APPEND_EVENTS)
        start = time.perf_counter()
        for first in range(0, APPEND_EVENTS, 1000):
            store.append(batched[first : first + 1000])
        return single, APPEND_EVENTS / (time.perf_counter() - start)
    finally:
        store.close()


def _postgres_url() -> str | None:
    url = os.environ.get("RUSTCHAIN_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    try:
        with psycopg.connect(url, connect_timeout=3):
            return url
    except psycopg.Error:
        return None


def _drop_postgres_tables(url: str, prefix: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        for table in (f"{prefix}_events", f"{prefix}_tracking"):
            connection.execute(f"DROP TABLE IF EXISTS {table}")


def bench_stores(home: Path) -> None:
    """Print append rates: one event per transaction, and 1,000 per transaction."""
    single, batched = _append_rates(EventStoreSettings(name="bench", home=home))
    print(f"append  SQLite      1/tx {single:>9,.0f} events/s   1000/tx {batched:>9,.0f} events/s")
    url = _postgres_url()
    if url is None:
        print("append  PostgreSQL  not measured: no server at RUSTCHAIN_TEST_POSTGRES_URL")
        return
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    try:
        single, batched = _append_rates(EventStoreSettings(prefix, home, database_url=url))
    finally:
        _drop_postgres_tables(url, prefix)
    print(f"append  PostgreSQL  1/tx {single:>9,.0f} events/s   1000/tx {batched:>9,.0f} events/s")


async def _raw_publish(url: str) -> float:
    """Pipelined nats-py publishing with acks: up to 4,000 in flight, then wait for all."""
    client = await connect(url)
    try:
        js = client.jetstream(publish_async_max_pending=4000)
        await ensure_stream(js, "raw", StreamSettings())
        messages = [
            (d.subject, d.model_dump_json().encode(), d) for d in _drafts(RAW_MESSAGES, "raw")
        ]
        start = time.perf_counter()
        futures = [
            await js.publish_async(subject, payload, headers=event_headers(draft))
            for subject, payload, draft in messages
        ]
        await asyncio.gather(*futures)
        return RAW_MESSAGES / (time.perf_counter() - start)
    finally:
        await client.close()


async def _relay(url: str, home: Path, sync: str) -> float:
    store = open_event_store(EventStoreSettings(name=f"relay_{sync}", home=home))
    try:
        drafts = _drafts(RELAY_EVENTS, "relay")
        for first in range(0, RELAY_EVENTS, 1000):
            store.append(drafts[first : first + 1000])
        relay = JetStreamRelay(store, url, RelaySettings(batch_size=1000))
        start = time.perf_counter()
        await relay.catch_up(timeout=120)
        seconds = time.perf_counter() - start
        if relay.stats.published != RELAY_EVENTS:
            raise RuntimeError(f"relay published {relay.stats.published} of {RELAY_EVENTS}")
        return RELAY_EVENTS / seconds
    finally:
        store.close()


async def _relay_past_a_paused_tenant(url: str, home: Path, sync: str) -> float:
    """Relay 20,000 events of 10 interleaved tenants, one of whose streams refuses them all."""
    store = open_event_store(EventStoreSettings(name=f"paused_{sync}", home=home))
    client = await connect(url)
    try:
        per_tenant = RELAY_EVENTS // TENANTS
        by_tenant = [_drafts(per_tenant, f"tenant{t}") for t in range(TENANTS)]
        drafts = [by_tenant[n % TENANTS][n // TENANTS] for n in range(RELAY_EVENTS)]
        for first in range(0, RELAY_EVENTS, 1000):
            store.append(drafts[first : first + 1000])
        refusing = dataclasses.replace(stream_config("tenant0", StreamSettings()), max_msg_size=64)
        await client.jetstream().add_stream(refusing)
        relay = JetStreamRelay(store, url, RelaySettings(batch_size=1000))
        # The paused tenant's retries are logged each time: not part of the figures.
        logging.getLogger("rustchain.platform.nats.relay_tenants").setLevel(logging.ERROR)
        others = RELAY_EVENTS - per_tenant
        stop = asyncio.Event()
        start = time.perf_counter()
        running = asyncio.ensure_future(relay.run(stop))
        while relay.stats.published < others and not running.done():
            await asyncio.sleep(0.001)
        seconds = time.perf_counter() - start
        stop.set()
        await running
        if relay.stats.published != others or "tenant0" not in relay.stats.paused():
            raise RuntimeError(f"relay published {relay.stats.published} of {others}")
        return others / seconds
    finally:
        await client.close()
        store.close()


def bench_jetstream(home: Path) -> None:
    """Print raw pipelined publish and relay rates, for fsync always and lazy."""
    for sync in (SYNC_ALWAYS, LAZY_SYNC):
        server = NatsServer(NatsServerSettings(store_dir=home / f"nats-{sync}", sync_interval=sync))
        server.start()
        try:
            raw = asyncio.run(_raw_publish(server.url))
            relayed = asyncio.run(_relay(server.url, home, sync))
            paused = asyncio.run(_relay_past_a_paused_tenant(server.url, home, sync))
        finally:
            server.stop()
        share = relayed / raw * 100
        print(f"JetStream fsync {sync:<6}  raw nats-py pipelined {raw:>9,.0f} msg/s (acked)")
        verdict = "meets" if share >= 50 else "MISSES"
        print(
            f"JetStream fsync {sync:<6}  relay SQLite->JetStream {relayed:>7,.0f} events/s"
            f" (acked) = {share:.0f}% of raw: {verdict} the 50% goal"
        )
        print(
            f"JetStream fsync {sync:<6}  relay, 1 of {TENANTS} tenants paused {paused:>7,.0f}"
            " events/s of the other tenants (acked)"
        )


def main() -> None:
    """Print every event-path figure, on one machine, in one run."""
    with tempfile.TemporaryDirectory(prefix="rustchain-bench-") as directory:
        home = Path(directory)
        bench_stores(home)
        bench_jetstream(home)


if __name__ == "__main__":
    main()
