"""`rustchain up --nats-cluster 3`: missions run, their events are kept on three servers, and the
deployment carries on when one of them is killed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rustchain.domain.events.names import stream_name
from rustchain.platform.nats.jetstream import NatsCredentials, connect, server_urls
from tests.integration.test_grpc_deployment import (
    UP_TIMEOUT_SECONDS,
    _relayed_events,
    _run,
    _trajectory,
    _wait_for,
)


@pytest.fixture
def clustered(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    home = tmp_path / "home"
    environ = {**os.environ, "RUSTCHAIN_HOME": str(home)}
    for inherited in ("RUSTCHAIN_ENDPOINT", "NATS_URL", "RUSTCHAIN_NATS_REPLICAS"):
        environ.pop(inherited, None)
    log = (tmp_path / "up.log").open("wb")
    command = [sys.executable, "-m", "rustchain", "up", "--nats-cluster", "3"]
    process = subprocess.Popen(command, env=environ, stdout=log, stderr=log)
    try:
        _wait_for((home / "endpoints.json").is_file, "endpoints.json")
        yield process, home
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(UP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


async def _stream_placement(url: str, home: Path, tenant: str) -> tuple[int, str]:
    """The replicas of a tenant's stream and the server that leads it."""
    token = (home / "admin.token").read_text().strip()
    client = await connect(url, credentials=NatsCredentials.of_token(token))
    try:
        info = await client.jetstream().stream_info(stream_name(tenant))
    finally:
        await client.close()
    assert info.cluster is not None and info.cluster.leader is not None
    return info.config.num_replicas or 1, info.cluster.leader


def _server_pids(supervisor: int) -> dict[str, int]:
    """The supervisor's nats-server children by the member folder of their configuration."""
    found = subprocess.run(
        ["pgrep", "-a", "-P", str(supervisor)], capture_output=True, text=True, check=False
    )
    servers: dict[str, int] = {}
    for line in found.stdout.splitlines():
        pid, _, command = line.partition(" ")
        if "nats-server" in command:
            member = Path(command.split()[-1]).parent.name  # .../nats/node-<i>/nats-server.conf
            servers[f"rustchain-{member.removeprefix('node-')}"] = int(pid)
    return servers


def _mission_id(run: subprocess.CompletedProcess[str]) -> str:
    return " ".join(run.stdout.split()).split("(", 1)[1].split(")", 1)[0]


def test_up_with_a_three_node_cluster_runs_missions_through_the_loss_of_a_node(
    clustered: tuple[subprocess.Popen[bytes], Path], tmp_path: Path
) -> None:
    process, home = clustered
    endpoints = json.loads((home / "endpoints.json").read_text())
    url = endpoints["nats_url"]
    assert len(server_urls(url)) == 3

    done = _run(home, "missions/hello.yaml", "--var", "who=Ada")
    assert done.returncode == 0, done.stderr
    first = _mission_id(done)
    trainer = endpoints["services"]["trainer"]
    _wait_for(lambda: _trajectory(trainer, first, home), "the trainer records the trajectory")
    replicas, leader = asyncio.run(_stream_placement(url, home, "default"))
    assert replicas == 3

    # The server leading the tenant's stream dies: the others elect a leader and carry on.
    servers = _server_pids(process.pid)
    assert len(servers) == 3
    os.kill(servers[leader], signal.SIGKILL)
    log = tmp_path / "up.log"
    _wait_for(lambda: f"nats-server {leader} restarted" in log.read_text(), "the restart")
    assert f"nats-server {leader} (pid {servers[leader]}) died" in log.read_text()

    after = _run(home, "missions/hello.yaml", "--var", "who=Grace")
    assert after.returncode == 0, after.stderr
    second = _mission_id(after)
    _wait_for(lambda: _relayed_events(home, second) == 9, "the second mission's events relayed")
    _wait_for(lambda: _trajectory(trainer, second, home), "the second trajectory")
    assert _relayed_events(home, first) == 9

    process.send_signal(signal.SIGTERM)
    assert process.wait(UP_TIMEOUT_SECONDS) == 0
    assert _server_pids(process.pid) == {}
