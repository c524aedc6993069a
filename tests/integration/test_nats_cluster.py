"""A three-node JetStream cluster: R3 streams, and a relay that rides out the loss of a node."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from rustchain.audit.jetstream import stream_events
from rustchain.domain.events.names import stream_name
from rustchain.domain.runs.stream_agreement import compare_with_stream
from rustchain.platform.nats.cluster import CLUSTER_NAME, NatsCluster
from rustchain.platform.nats.jetstream import (
    NATS_OUTAGES,
    StoredMessage,
    StreamSettings,
    connect,
)
from rustchain.platform.nats.relay import JetStreamRelay, RelaySettings
from rustchain.platform.nats.server import (
    ClusterRoutes,
    NatsServer,
    NatsServerSettings,
    free_port,
)
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from tests.conditions import retried, wait_until, wait_until_sync
from tests.integration.event_helpers import (
    append_in_batches,
    assert_stream_matches_store,
    many_drafts,
    stream_messages,
)

MISSIONS = [f"m{n}" for n in range(10)]
R3 = StreamSettings(replicas=3)


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """Three real nats-servers from the wheel, routed into one JetStream cluster."""
    cluster = NatsCluster(NatsServerSettings(store_dir=tmp_path / "nats"), 3)
    cluster.start()
    yield cluster
    cluster.stop()


async def _stream_leader(url: str, tenant: str) -> tuple[str, list[str]]:
    """The name of the server leading the tenant's stream, and of its other replicas."""
    client = await connect(url)
    try:
        info = await client.jetstream().stream_info(stream_name(tenant))
    finally:
        await client.close()
    assert info.cluster is not None and info.cluster.leader is not None
    return info.cluster.leader, [peer.name for peer in info.cluster.replicas or []]


async def _read_from_survivors(url: str) -> list[StoredMessage]:
    """The tenant's events, read as a reader does: connecting again while JetStream recovers
    (a consumer cannot be made on a stream whose new leader is still catching up)."""
    return await retried(
        lambda: stream_messages(url, "acme"), NATS_OUTAGES, 60, "reading the tenant's stream"
    )


def _member(cluster: NatsCluster, server_name: str) -> NatsServer:
    return next(m for m in cluster.members if m.settings.server_name == server_name)


def test_killing_the_stream_leader_mid_relay_of_10000_events_keeps_each_once_in_order(
    nats_cluster: NatsCluster, sqlite_settings: EventStoreSettings
) -> None:
    store = open_event_store(sqlite_settings)
    append_in_batches(store, many_drafts(10_000))

    async def relay_through_a_lost_node() -> tuple[JetStreamRelay, str]:
        settings = RelaySettings(batch_size=500, backoff_max=0.5, streams=R3)
        relay = JetStreamRelay(store, nats_cluster.url, settings)
        stop = asyncio.Event()
        running = asyncio.ensure_future(relay.run(stop))
        try:
            await wait_until(lambda: relay.stats.published >= 2000, 60, "2000 events are acked")
            leader, followers = await _stream_leader(nats_cluster.url, "acme")
            assert len(followers) == 2, "the stream is not kept on three servers"
            _member(nats_cluster, leader).kill()
            last = store.last_position()
            await wait_until(lambda: relay.position == last, 90, "the relay catches up")
        finally:
            stop.set()
            await running
        return relay, leader

    try:
        relay, killed = asyncio.run(relay_through_a_lost_node())
        # A reader given every URL, the dead one first, reads from the survivors.
        dead = _member(nats_cluster, killed)
        survivors = [m.url for m in nats_cluster.members if m is not dead]
        messages = asyncio.run(_read_from_survivors(",".join([dead.url, *survivors])))
        new_leader, _ = asyncio.run(_stream_leader(",".join(survivors), "acme"))
        assert new_leader != killed
        assert relay.stats.published + relay.stats.skipped >= 10_000
        assert len(messages) == 10_000
        # A chain's next event waits for its previous one's ack: a publish lost with the leader
        # is sent again before the chain goes on, so no chain ever has a hole in JetStream.
        assert relay.stats.holes == 0
        assert_stream_matches_store(messages, store, "acme", MISSIONS)
        # The audit's comparison, of the stream as `rustchain audit verify` reads it.
        stored = [e for mission in MISSIONS for e in store.mission_events("acme", mission)]
        streamed = stream_events(",".join(survivors), "acme")
        comparison = compare_with_stream(stored, streamed, {"executor"})
        assert comparison.findings == []
        assert comparison.stored == comparison.streamed == 10_000
    finally:
        store.close()


def _route_peers(member: NatsServer) -> set[str]:
    """The server names `member` has routes with, from its monitoring endpoint."""
    url = f"http://{member.settings.host}:{member.monitor_port}/routez"
    with urllib.request.urlopen(url, timeout=10) as answer:
        routes = json.load(answer)["routes"] or []
    return {str(route.get("remote_name", "")) for route in routes}


def test_a_server_without_the_route_password_cannot_join_the_cluster(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    first = nats_cluster.members[0]
    assert first.settings.cluster is not None
    members = {m.settings.server_name for m in nats_cluster.members} - {first.settings.server_name}
    assert _route_peers(first) == members
    route = f"nats-route://{first.settings.host}:{first.settings.cluster.port}"
    rogue = NatsServer(
        NatsServerSettings(
            store_dir=tmp_path / "rogue",
            server_name="rogue",
            cluster=ClusterRoutes(CLUSTER_NAME, free_port(), (route,), "route", "guessed"),
        )
    )
    rogue.launch()
    try:
        wait_until_sync(
            lambda: "authentication error" in first.log_path.read_text().lower(),
            30,
            "the member refused the rogue's route",
        )
        assert _route_peers(first) == members
    finally:
        rogue.stop()
