"""Relay high availability: its rate to one server against a three-node R3 JetStream cluster,
how long JetStream takes to accept events again when the stream's leader dies, and how long a
standby relay takes to publish after the active one is SIGKILLed (PostgreSQL store).

Goal (issue 15): an R3 cluster costs the relay less than half its single-server rate; a relay
failover within the standby period plus one second.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from tests.conditions import wait_until_sync

from bench.bench_events import _drafts, _postgres_url
from rustchain.domain.events.envelope import EventDraft
from rustchain.domain.events.names import event_subject, stream_name
from rustchain.platform.nats.cluster import NatsCluster
from rustchain.platform.nats.jetstream import StreamSettings, connect, ensure_stream
from rustchain.platform.nats.relay import JetStreamRelay, RelaySettings
from rustchain.platform.nats.server import NatsServer, NatsServerSettings
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store

RELAY_EVENTS = 20_000
# The relay keeps one unacknowledged event per chain (a service's events of a mission), so its
# pipeline is as deep as the number of missions relayed at once: 20, and 200 for comparison.
BENCH_MISSIONS = 20
MANY_MISSIONS = 200
FAILOVERS = 3
STANDBY_SECONDS = 1.0
REPO = Path(__file__).resolve().parents[1]


def _spread(drafts: list[EventDraft], missions: int) -> list[EventDraft]:
    """The same events over `missions` missions (round-robin), each its own chain."""
    return [
        d.model_copy(update={"mission_id": f"m{n % missions}", "aggregate_id": f"m{n % missions}"})
        for n, d in enumerate(drafts)
    ]


async def _relay_rate(
    url: str, home: Path, name: str, replicas: int, missions: int = BENCH_MISSIONS
) -> float:
    store = open_event_store(EventStoreSettings(name=name, home=home))
    try:
        drafts = _spread(_drafts(RELAY_EVENTS, name), missions)  # a tenant, a stream, per run
        for first in range(0, RELAY_EVENTS, 1000):
            store.append(drafts[first : first + 1000])
        settings = RelaySettings(batch_size=1000, streams=StreamSettings(replicas=replicas))
        relay = JetStreamRelay(store, url, settings)
        start = time.perf_counter()
        await relay.catch_up(timeout=120)
        seconds = time.perf_counter() - start
        if relay.stats.published != RELAY_EVENTS:
            raise RuntimeError(f"relay published {relay.stats.published} of {RELAY_EVENTS}")
        return RELAY_EVENTS / seconds
    finally:
        store.close()


async def _leader_loss_pause(cluster: NatsCluster) -> float:
    """Seconds between the last ack before the stream leader's SIGKILL and the first after."""
    client = await connect(cluster.url)
    js = client.jetstream(timeout=1.0)
    name = await ensure_stream(js, "failover", StreamSettings(replicas=3))
    subject = event_subject("failover", "m", "executor", "Ticked")
    await js.publish(subject, b"{}", stream=name)
    placement = (await js.stream_info(name)).cluster
    assert placement is not None and placement.leader is not None
    victim = next(m for m in cluster.members if m.settings.server_name == placement.leader)
    last_ack = time.perf_counter()
    victim.kill()
    try:
        while time.perf_counter() - last_ack < 60:
            try:
                if client.is_closed:
                    # It was connected to the victim: a relay connects again the same way.
                    client = await connect(cluster.url)
                    js = client.jetstream(timeout=1.0)
                await js.publish(subject, b"{}", stream=name)
                return time.perf_counter() - last_ack
            except Exception:
                await asyncio.sleep(0.01)  # retry period of the measurement
        raise RuntimeError("JetStream did not accept events within 60 s of the leader's loss")
    finally:
        await client.close()


def bench_cluster(home: Path) -> None:
    """Print the relay's rate to one server and to an R3 cluster, and a leader loss's pause."""
    server = NatsServer(NatsServerSettings(store_dir=home / "single"))
    server.start()
    try:
        single = asyncio.run(_relay_rate(server.url, home, "single", 1))
    finally:
        server.stop()
    cluster = NatsCluster(NatsServerSettings(store_dir=home / "cluster"), 3)
    cluster.start()
    try:
        replicated = asyncio.run(_relay_rate(cluster.url, home, "cluster", 3))
        many = asyncio.run(_relay_rate(cluster.url, home, "many", 3, MANY_MISSIONS))
        pause = asyncio.run(_leader_loss_pause(cluster))
    finally:
        cluster.stop()
    print(f"machine: {os.cpu_count()} cores; fsync before every ack (RUSTCHAIN_NATS_SYNC=always)")
    print(f"relay SQLite -> 1 nats-server, R1      {single:>9,.0f} events/s (acked)")
    print(
        f"relay SQLite -> 3-node cluster, R3     {replicated:>9,.0f} events/s (acked)"
        f"   {replicated / single * 100:.0f}% of one server ({BENCH_MISSIONS} missions)"
    )
    print(
        f"relay SQLite -> 3-node cluster, R3     {many:>9,.0f} events/s (acked)"
        f"   {MANY_MISSIONS} missions"
    )
    print(f"stream leader SIGKILLed: JetStream accepts again after {pause:.2f} s")


def _relay_process(settings: EventStoreSettings, url: str, log: Path) -> subprocess.Popen[str]:
    assert settings.database_url is not None
    environ = {
        **os.environ,
        "PYTHONPATH": str(REPO / "services"),
        "RUSTCHAIN_HOME": str(settings.home),
        "RUSTCHAIN_DATABASE_URL": settings.database_url,
        "RUSTCHAIN_RELAY_STANDBY_SECONDS": str(STANDBY_SECONDS),
        "RUSTCHAIN_LOG_FORMAT": "text",
    }
    command = [sys.executable, "-m", "rustchain", "events", "relay", "--store", settings.name]
    with log.open("wb") as sink:
        return subprocess.Popen(
            [*command, "--nats-url", url],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            text=True,
        )


async def _failovers(settings: EventStoreSettings, url: str) -> list[float]:
    """SIGKILL the active relay with events waiting; seconds until the standby publishes one."""
    store = open_event_store(settings)
    client = await connect(url)
    js = client.jetstream()
    processes: list[subprocess.Popen[str]] = []
    logs = settings.home / "logs"
    logs.mkdir(exist_ok=True)

    def said(log: Path, words: str) -> bool:
        return words in log.read_text()

    async def held() -> int:
        try:
            return (await js.stream_info(stream_name("relay"))).state.messages
        except Exception:
            return 0

    try:
        store.append(_drafts(10, "relay"))
        active_log = logs / "relay-0.log"
        processes.append(_relay_process(settings, url, active_log))
        wait_until_sync(lambda: said(active_log, "active:"), 30, "the first relay is active")
        times: list[float] = []
        for round_number in range(1, FAILOVERS + 1):
            standby_log = logs / f"relay-{round_number}.log"
            processes.append(_relay_process(settings, url, standby_log))
            wait_until_sync(
                lambda: said(standby_log, "standby:"),  # noqa: B023 - used at once
                30,
                "the new relay stands by",
            )
            wait_until_sync(
                lambda: store.tracked_position("jetstream_relay") == store.last_position(),
                30,
                "the active relay published every event",
            )
            before = await held()
            processes[-2].send_signal(signal.SIGKILL)
            killed = time.perf_counter()
            processes[-2].wait()
            store.append(_drafts(10, "relay"))
            while await held() <= before:
                if time.perf_counter() - killed > 30:
                    raise RuntimeError("the standby relay did not take over")
                await asyncio.sleep(0.005)  # polling period of the measurement
            times.append(time.perf_counter() - killed)
            active_log = standby_log
        return times
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        await client.close()
        store.close()


def bench_failover(home: Path) -> None:
    """Print the time from the active relay's SIGKILL to the standby's first publish."""
    url = _postgres_url()
    if url is None:
        print("relay failover          not measured: no PostgreSQL at RUSTCHAIN_TEST_POSTGRES_URL")
        return
    name = f"b{uuid.uuid4().hex[:12]}"
    settings = EventStoreSettings(name=name, home=home, database_url=url)
    server = NatsServer(NatsServerSettings(store_dir=home / "failover"))
    server.start()
    try:
        times = asyncio.run(_failovers(settings, server.url))
    finally:
        server.stop()
        with psycopg.connect(url, autocommit=True) as connection:
            for table in ("events", "tracking", "checkpoints", "artifacts"):
                connection.execute(f"DROP TABLE IF EXISTS {name}_{table}")
    print(
        f"relay failover (SIGKILL of the active -> the standby's first publish), standby period"
        f" {STANDBY_SECONDS:g} s: median {statistics.median(times):.2f} s, worst"
        f" {max(times):.2f} s over {len(times)} (goal: under {STANDBY_SECONDS + 1:g} s)"
    )


def main() -> None:
    """Print every relay-HA figure, on one machine, in one run."""
    with tempfile.TemporaryDirectory(prefix="rustchain-bench-") as directory:
        home = Path(directory)
        bench_cluster(home)
        bench_failover(home)


if __name__ == "__main__":
    main()
