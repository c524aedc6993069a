"""The settings of relay election and NATS clustering: parsed or refused in one line, no I/O."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rustchain.platform.nats.cluster import ClusterSizeError, NatsCluster, check_cluster_size
from rustchain.platform.nats.jetstream import StreamConfigError, server_urls, stream_replicas
from rustchain.platform.nats.relay_election import (
    ElectionSettingError,
    ElectionSettings,
    SoleRelay,
    run_when_elected,
)
from rustchain.platform.nats.server import NatsServerSettings, _config
from rustchain.platform.storage.advisory_lock import advisory_key


def test_a_nats_url_names_one_server_or_a_comma_separated_cluster() -> None:
    assert server_urls("nats://a:4222") == ["nats://a:4222"]
    assert server_urls("nats://a:4222, nats://b:4222,,nats://c:4222 ") == [
        "nats://a:4222",
        "nats://b:4222",
        "nats://c:4222",
    ]


@pytest.mark.parametrize("text", ["0", "6", "three", "-1", "1.5"])
def test_a_replica_count_outside_1_to_5_is_refused_naming_the_setting(text: str) -> None:
    with pytest.raises(StreamConfigError, match=r"RUSTCHAIN_NATS_REPLICAS must be .* found"):
        stream_replicas({"RUSTCHAIN_NATS_REPLICAS": text})


def test_replicas_default_to_one_and_read_the_setting() -> None:
    assert stream_replicas({}) == 1
    assert stream_replicas({"RUSTCHAIN_NATS_REPLICAS": "3"}) == 3


@pytest.mark.parametrize("size", [0, 2, 4, 6])
def test_a_cluster_needs_an_odd_size_for_its_quorum(size: int) -> None:
    with pytest.raises(ClusterSizeError, match="1, 3 or 5 servers"):
        check_cluster_size(size)


def test_cluster_members_have_their_own_names_files_and_routes_to_every_member(
    tmp_path: Path,
) -> None:
    cluster = NatsCluster(NatsServerSettings(store_dir=tmp_path), 3)
    names = [m.settings.server_name for m in cluster.members]
    assert names == ["rustchain-0", "rustchain-1", "rustchain-2"]
    assert len({m.settings.store_dir for m in cluster.members}) == 3
    routes = {m.settings.cluster.routes for m in cluster.members if m.settings.cluster}
    assert len(routes) == 1 and len(next(iter(routes))) == 3
    config = _config(cluster.members[1].settings, 4222, 8222)
    assert '"server_name": "rustchain-1"' in config and '"routes"' in config
    assert server_urls(cluster.url) == [m.url for m in cluster.members]


def test_lock_keys_are_fixed_per_store_and_differ_between_stores() -> None:
    assert advisory_key("relay", "executor") == advisory_key("relay", "executor")
    assert advisory_key("relay", "executor") != advisory_key("relay", "verifier")
    assert -(2**63) <= advisory_key("relay", "executor") < 2**63


@pytest.mark.parametrize("text", ["0", "-1", "soon", "7200"])
def test_a_standby_period_out_of_range_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(ElectionSettingError, match="RUSTCHAIN_RELAY_STANDBY_SECONDS must be"):
        ElectionSettings.from_environ({"RUSTCHAIN_RELAY_STANDBY_SECONDS": text})


def test_a_sqlite_store_has_its_one_relay_work_until_stopped() -> None:
    said: list[str] = []

    async def elect() -> int:
        stop = asyncio.Event()
        runs = 0

        async def work(active: asyncio.Event) -> None:
            nonlocal runs
            runs += 1
            stop.set()
            await active.wait()

        await run_when_elected(SoleRelay(), work, stop, ElectionSettings(0.01), said.append)
        return runs

    assert asyncio.run(elect()) == 1
    assert [line.split(":")[0] for line in said] == ["active"]
