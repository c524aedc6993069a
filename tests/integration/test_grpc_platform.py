"""Every service answers health checks and reflection; an unreachable endpoint is one clear line."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from rustchain.generated.rustchain.planner.v1 import planner_pb2, planner_pb2_grpc
from rustchain.platform.grpc.client import ServiceUnavailableError, open_channel, wait_ready
from rustchain.platform.nats.server import NatsServer, free_port
from tests.integration.grpc_helpers import FULL_NAMES, running_services
from tests.paths import REPO

SERVE_TIMEOUT_SECONDS = 30.0


def test_every_service_reports_serving_and_lists_itself_by_reflection(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    async def scenario() -> None:
        order = ("verifier", "memory", "executor", "planner", "trainer")
        async with running_services(tmp_path, order, nats_server.url) as services:
            for service, full_name in FULL_NAMES.items():
                health = health_pb2_grpc.HealthStub(services.channel(service))
                for name in (full_name, ""):
                    reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
                    assert reply.status == health_pb2.HealthCheckResponse.SERVING
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await health.Check(health_pb2.HealthCheckRequest(service="no.Such"))
                assert caught.value.code() is grpc.StatusCode.NOT_FOUND
                reflection = reflection_pb2_grpc.ServerReflectionStub(services.channel(service))
                request = reflection_pb2.ServerReflectionRequest(list_services="")
                replies = [r async for r in reflection.ServerReflectionInfo(iter([request]))]
                listed = {s.name for s in replies[0].list_services_response.service}
                assert full_name in listed
                assert "grpc.health.v1.Health" in listed

    asyncio.run(scenario())


def test_unreachable_endpoint_is_one_line_naming_it() -> None:
    endpoint = f"127.0.0.1:{free_port()}"

    async def scenario() -> None:
        channel = open_channel(endpoint)
        try:
            with pytest.raises(ServiceUnavailableError) as caught:
                await wait_ready(channel, "planner", endpoint)
        finally:
            await channel.close()
        message = str(caught.value)
        assert message.startswith(f"the planner service at {endpoint} is unreachable")
        assert "\n" not in message

    asyncio.run(scenario())


def test_planner_reports_an_unreachable_verifier_as_unavailable(tmp_path: Path) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    from rustchain.cli.serve import serve

    async def scenario() -> None:
        stop = asyncio.Event()
        bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        peers = {"verifier": nowhere, "executor": nowhere}
        task = asyncio.ensure_future(
            serve("planner", 0, {"RUSTCHAIN_HOME": str(tmp_path)}, peers, stop, bound.set_result)
        )
        try:
            port = await asyncio.wait_for(bound, SERVE_TIMEOUT_SECONDS)
            async with open_channel(f"127.0.0.1:{port}") as channel:
                planner = planner_pb2_grpc.PlannerServiceStub(channel)
                text = (REPO / "missions" / "hello.yaml").read_text()
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await planner.SubmitMission(planner_pb2.SubmitMissionRequest(yaml=text))
        finally:
            stop.set()
            await task
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        assert f"the verifier service at {nowhere} is unreachable" in (caught.value.details() or "")

    asyncio.run(scenario())


def test_rustchain_serve_listens_until_sigterm_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    environ = {**os.environ, "RUSTCHAIN_HOME": str(tmp_path)}
    command = [sys.executable, "-m", "rustchain", "serve", "memory", "--port", str(port)]
    process = subprocess.Popen(command, env=environ, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == f"rustchain memory serving on 127.0.0.1:{port}"

        async def check() -> int:
            async with open_channel(f"127.0.0.1:{port}") as channel:
                health = health_pb2_grpc.HealthStub(channel)
                reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
                return int(reply.status)

        assert asyncio.run(check()) == health_pb2.HealthCheckResponse.SERVING
        process.send_signal(signal.SIGTERM)
        assert process.wait(SERVE_TIMEOUT_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _outward_address() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing), if any."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_serve_listens_on_the_host_it_is_given(tmp_path: Path, host: str) -> None:
    outward = _outward_address()
    if outward is None:
        pytest.skip("this machine has no address besides loopback")
    from rustchain.cli.serve import serve

    async def healthy(address: str) -> bool:
        async with open_channel(address) as channel:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=5
                )
            except grpc.aio.AioRpcError:
                return False
            return reply.status == health_pb2.HealthCheckResponse.SERVING

    async def scenario() -> tuple[bool, bool]:
        stop = asyncio.Event()
        bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        environ = {"RUSTCHAIN_HOME": str(tmp_path)}
        task = asyncio.ensure_future(
            serve("memory", 0, environ, {}, stop, bound.set_result, host=host)
        )
        try:
            port = await asyncio.wait_for(bound, SERVE_TIMEOUT_SECONDS)
            return await healthy(f"127.0.0.1:{port}"), await healthy(f"{outward}:{port}")
        finally:
            stop.set()
            await task

    on_loopback, from_outside = asyncio.run(scenario())
    assert on_loopback
    # Only a server listening on every address answers on the machine's outward address.
    assert from_outside is (host == "0.0.0.0")
