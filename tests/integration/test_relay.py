"""The relay against a real nats-server: ordered, deduplicated, and whole across crashes."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rustchain.domain.events.names import stream_name, tenant_subjects
from rustchain.platform.nats.jetstream import (
    NatsUnavailableError,
    StreamConfigError,
    StreamSettings,
    connect,
)
from rustchain.platform.nats.relay import DEFAULT_READER, JetStreamRelay, RelaySettings, RelayStats
from rustchain.platform.nats.server import NatsServer
from rustchain.platform.storage.event_store import (
    EventStoreSettings,
    RecorderEventStore,
    open_event_store,
)
from tests.conditions import wait_until
from tests.integration.event_helpers import (
    append_in_batches,
    assert_stream_matches_store,
    many_drafts,
    stream_count,
    stream_messages,
)

REPO = Path(__file__).resolve().parents[2]
MISSIONS = [f"m{n}" for n in range(10)]


def test_embedded_server_serves_jetstream_and_stops(nats_server: NatsServer) -> None:
    async def account_streams() -> int:
        client = await connect(nats_server.url)
        try:
            return (await client.jetstream().account_info()).streams
        finally:
            await client.close()

    assert asyncio.run(account_streams()) == 0
    assert (nats_server.settings.store_dir / "jetstream").is_dir()
    nats_server.stop()
    with pytest.raises(NatsUnavailableError, match=nats_server.url):
        asyncio.run(account_streams())


def test_each_event_is_published_once_on_its_subject_even_when_relayed_twice(
    nats_server: NatsServer, store_settings: EventStoreSettings
) -> None:
    store = open_event_store(store_settings)
    drafts = many_drafts(500, tenants=("acme", "globex"))
    append_in_batches(store, drafts, size=100)

    async def relay_twice() -> tuple[RelayStats, RelayStats, RelayStats]:
        first = JetStreamRelay(store, nats_server.url, RelaySettings(batch_size=64))
        await first.catch_up(timeout=30)
        # Relays that lost their position: each tenant's first 100 events are in doubt, so the
        # relay asks JetStream what it holds and skips them; the rest JetStream drops as copies.
        replays = []
        for reader in ("replay", "replay-again"):
            replay = JetStreamRelay(
                store,
                nats_server.url,
                RelaySettings(reader=reader, batch_size=50, max_in_flight=1),
            )
            await replay.catch_up(timeout=30)
            replays.append(replay.stats)
        return first.stats, replays[0], replays[1]

    try:
        first, replay, again = asyncio.run(relay_twice())
        assert (first.published, first.duplicates, first.skipped) == (500, 0, 0)
        assert (replay.published, replay.duplicates, replay.skipped) == (300, 300, 200)
        assert replay == again
        for tenant in ("acme", "globex"):
            messages = asyncio.run(stream_messages(nats_server.url, tenant))
            assert len(messages) == 250
            assert_stream_matches_store(messages, store, tenant, MISSIONS)
        assert store.tracked_position(DEFAULT_READER) == store.last_position()
    finally:
        store.close()


def test_two_tenants_never_share_a_stream_or_a_subject(
    nats_server: NatsServer, sqlite_settings: EventStoreSettings
) -> None:
    store = open_event_store(sqlite_settings)
    append_in_batches(store, many_drafts(40, tenants=("acme", "acme-2")))

    async def streams() -> dict[str, list[str]]:
        await JetStreamRelay(store, nats_server.url).catch_up(timeout=30)
        client = await connect(nats_server.url)
        try:
            js = client.jetstream()
            return {
                name: list((await js.stream_info(name)).config.subjects or [])
                for name in (stream_name("acme"), stream_name("acme-2"))
            }
        finally:
            await client.close()

    try:
        assert asyncio.run(streams()) == {
            "RUSTCHAIN_ACME": [tenant_subjects("acme")],
            "RUSTCHAIN_ACME-2": [tenant_subjects("acme-2")],
        }
        for tenant in ("acme", "acme-2"):
            messages = asyncio.run(stream_messages(nats_server.url, tenant))
            assert {m.event.tenant for m in messages} == {tenant}
            assert all(m.event.subject.startswith(f"rustchain.{tenant}.") for m in messages)
            assert len(messages) == 20
    finally:
        store.close()


def test_killing_nats_mid_relay_of_10000_events_loses_and_repeats_none(
    nats_server: NatsServer, store_settings: EventStoreSettings
) -> None:
    store = open_event_store(store_settings)
    append_in_batches(store, many_drafts(10_000))

    async def relay_through_a_crash() -> JetStreamRelay:
        relay = JetStreamRelay(
            store, nats_server.url, RelaySettings(batch_size=500, backoff_max=0.5)
        )
        stop = asyncio.Event()
        running = asyncio.ensure_future(relay.run(stop))
        try:
            await wait_until(lambda: relay.stats.published >= 2000, 60, "2000 events are acked")
            nats_server.kill()
            await wait_until(lambda: relay.stats.outages >= 1, 30, "the relay sees the outage")
            nats_server.start()
            last = store.last_position()
            await wait_until(lambda: relay.position == last, 120, "the relay catches up")
        finally:
            stop.set()
            await running
        return relay

    try:
        relay = asyncio.run(relay_through_a_crash())
        messages = asyncio.run(stream_messages(nats_server.url, "acme"))
        assert relay.stats.outages >= 1
        assert len(messages) == 10_000
        assert_stream_matches_store(messages, store, "acme", MISSIONS)
    finally:
        store.close()


def _start_relay_process(settings: EventStoreSettings, url: str) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "tests.integration.relay_process",
        "--home",
        str(settings.home),
        "--name",
        settings.name,
        "--url",
        url,
        "--batch-size",
        "1000",
    ]
    if settings.database_url:
        command += ["--database-url", settings.database_url]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)


@pytest.fixture
def relay_processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Relay processes started by a test, killed if still running when it ends."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_killing_the_relay_mid_batch_loses_and_repeats_none(
    nats_server: NatsServer,
    store_settings: EventStoreSettings,
    relay_processes: list[subprocess.Popen[str]],
) -> None:
    store: RecorderEventStore = open_event_store(store_settings)
    append_in_batches(store, many_drafts(10_000))

    async def published_ahead_of_tracking() -> None:
        async def ahead() -> bool:
            count = await stream_count(nats_server.url, "acme")
            return count >= 2000 and count - store.tracked_position(DEFAULT_READER) >= 100

        deadline = asyncio.get_running_loop().time() + 60
        while not await ahead():
            assert asyncio.get_running_loop().time() < deadline, "relay made no progress"
            assert first.poll() is None, "the relay finished before it could be killed"

    try:
        first = _start_relay_process(store_settings, nats_server.url)
        relay_processes.append(first)
        asyncio.run(published_ahead_of_tracking())
        first.send_signal(signal.SIGKILL)
        first.wait()
        tracked = store.tracked_position(DEFAULT_READER)
        in_stream = asyncio.run(stream_count(nats_server.url, "acme"))
        assert in_stream > tracked, "the kill did not land between publish and tracking"

        second = _start_relay_process(store_settings, nats_server.url)
        relay_processes.append(second)
        output, _ = second.communicate(timeout=120)
        stats = json.loads(output)

        assert second.returncode == 0
        # In-doubt events JetStream holds are skipped; any the server stored after the check
        # (sent by the killed relay, still in the server's socket buffer) are dropped as copies.
        assert stats["skipped"] + stats["duplicates"] >= in_stream - tracked
        assert stats["skipped"] > 0
        assert stats["published"] + stats["skipped"] == 10_000 - tracked
        messages = asyncio.run(stream_messages(nats_server.url, "acme"))
        assert len(messages) == 10_000
        assert_stream_matches_store(messages, store, "acme", MISSIONS)
    finally:
        store.close()


def test_a_stream_configuration_the_server_refuses_stops_the_relay_with_its_reason(
    nats_server: NatsServer, sqlite_settings: EventStoreSettings
) -> None:
    store = open_event_store(sqlite_settings)
    append_in_batches(store, many_drafts(5))
    settings = RelaySettings(streams=StreamSettings(replicas=3))

    try:
        with pytest.raises(StreamConfigError, match="RUSTCHAIN_ACME: replicas > 1"):
            asyncio.run(JetStreamRelay(store, nats_server.url, settings).catch_up(timeout=30))
        assert store.tracked_position(DEFAULT_READER) == 0
    finally:
        store.close()


def test_a_full_stream_holds_its_events_in_the_store_until_its_quota_is_raised(
    nats_server: NatsServer, sqlite_settings: EventStoreSettings
) -> None:
    store = open_event_store(sqlite_settings)
    drafts = many_drafts(200, tenants=("acme",))
    append_in_batches(store, drafts, size=50)
    small = RelaySettings(
        batch_size=50, ack_timeout=5, backoff_max=0.2, streams=StreamSettings(max_bytes=20_000)
    )

    async def relay_into_the_quota() -> JetStreamRelay:
        relay = JetStreamRelay(store, nats_server.url, small)
        stop = asyncio.Event()
        running = asyncio.ensure_future(relay.run(stop))
        try:
            await wait_until(lambda: "acme" in relay.stats.paused(), 30, "acme is paused")
        finally:
            stop.set()
            await running
        return relay

    try:
        relay = asyncio.run(relay_into_the_quota())
        message = relay.stats.paused()["acme"]
        assert "stream RUSTCHAIN_ACME is full" in message
        assert "RUSTCHAIN_MAX_STREAM_BYTES" in message
        assert relay.position < store.last_position()
        held = asyncio.run(stream_count(nats_server.url, "acme"))
        assert 0 < held < len(drafts)

        # The quota raised, the relay goes on from its position: every event once, in order.
        raised = RelaySettings(batch_size=50, streams=StreamSettings(max_bytes=10_000_000))
        asyncio.run(JetStreamRelay(store, nats_server.url, raised).catch_up(timeout=30))
        messages = asyncio.run(stream_messages(nats_server.url, "acme"))
        assert_stream_matches_store(messages, store, "acme", MISSIONS)
    finally:
        store.close()
