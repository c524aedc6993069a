"""Clients reach several replicas through one channel: calls are spread over the replicas that
answer, a call whose replica is gone goes to another, and `rustchain up --executors N` refuses
SQLite stores in one line."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from rustchain.platform.grpc.client import open_channel
from rustchain.platform.grpc.server import LOOPBACK

CALLS = 30


Status = int
WHO = "who"
"""A health name each replica answers with a status of its own, so a reply tells who answered."""


async def _replica(status: Status) -> tuple[grpc.aio.Server, str]:
    """A server that reports SERVING overall and `status` for WHO."""
    server = grpc.aio.server()
    checks = health.aio.HealthServicer()
    await checks.set("", health_pb2.HealthCheckResponse.SERVING)
    await checks.set(WHO, status)
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    port = server.add_insecure_port(f"{LOOPBACK}:0")
    await server.start()
    return server, f"{LOOPBACK}:{port}"


async def _answered_by(stub: health_pb2_grpc.HealthStub) -> Status:
    """Which replica answered a call."""
    request = health_pb2.HealthCheckRequest(service=WHO)
    reply = await stub.Check(request, timeout=5)  # type: ignore[attr-defined]
    return int(reply.status)


def test_calls_are_spread_over_the_replicas_and_fail_over_when_one_is_gone() -> None:
    async def scenario() -> None:
        names = [
            health_pb2.HealthCheckResponse.SERVING,
            health_pb2.HealthCheckResponse.NOT_SERVING,
            health_pb2.HealthCheckResponse.UNKNOWN,
        ]
        replicas = [await _replica(name) for name in names]
        try:
            await _spread_and_fail_over(names, replicas)
        finally:
            for server, _ in replicas:
                await server.stop(None)
            # grpc.aio servers must be collected while their loop runs.
            replicas.clear()
            gc.collect()

    asyncio.run(scenario())


async def _spread_and_fail_over(
    names: list[Status], replicas: list[tuple[grpc.aio.Server, str]]
) -> None:
    endpoint = ",".join(address for _, address in replicas)
    async with open_channel(endpoint) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        overall = health_pb2.HealthCheckRequest(service="")
        # Every replica gets connected first: the balancer spreads over the ready ones.
        for _ in range(CALLS):
            await stub.Check(overall, timeout=5)  # type: ignore[attr-defined]
        spread = Counter([await _answered_by(stub) for _ in range(CALLS)])
        assert set(spread) == set(names), spread
        await replicas[0][0].stop(None)
        for _ in range(CALLS):
            reply = await stub.Check(overall, timeout=5)  # type: ignore[attr-defined]
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        after = Counter([await _answered_by(stub) for _ in range(CALLS)])
        assert set(after) == set(names[1:]), after


def test_up_with_several_executors_on_sqlite_is_refused_in_one_line(tmp_path: Path) -> None:
    environ = {**os.environ, "RUSTCHAIN_HOME": str(tmp_path / "home")}
    environ.pop("RUSTCHAIN_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "rustchain", "up", "--executors", "3"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "rustchain up: --executors 3 needs PostgreSQL: an SQLite event store has one writer,"
        " so one executor drives it; set RUSTCHAIN_DATABASE_URL=postgresql://... to run several"
    ]
    assert not (tmp_path / "home" / "endpoints.json").exists()
