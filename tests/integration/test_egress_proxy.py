"""The egress proxy of sandboxed commands, over real Unix and TCP sockets."""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from rustchain.platform.sandbox.egress_proxy import EgressProxy, ProxyLimits
from tests.integration.http_fixtures import LocalServer, json_answer, serve
from tests.integration.test_network_runners import port_of

# The default policy's denied hosts without 127.*: the permitted tunnels below must reach a
# listener this test starts, and a test can only start one on loopback.
DENIED_BUT_LOOPBACK = ["localhost", "*.localhost", "10.*", "169.254.*", "192.168.*", "[*"]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # A Unix socket path must fit in 108 bytes; pytest's tmp_path may not.
    with tempfile.TemporaryDirectory(prefix="egress-", dir="/tmp") as folder:
        yield Path(folder)


@pytest.fixture
def upstream() -> Iterator[LocalServer]:
    yield from serve(lambda method, path, body: json_answer({"path": path}))


@asynccontextmanager
async def proxy_at(
    folder: Path,
    hosts: list[str],
    ports: list[int],
    denied: list[str],
    limits: ProxyLimits | None = None,
) -> AsyncIterator[EgressProxy]:
    async with EgressProxy.start(folder / "proxy.sock", hosts, ports, denied, limits=limits) as p:
        yield p


async def exchange(proxy: EgressProxy, request: bytes) -> bytes:
    """Send bytes to the proxy and read everything it answers until it closes."""
    reader, writer = await asyncio.open_unix_connection(str(proxy.socket_path))
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(scenario())


def test_connect_to_an_allowed_name_that_resolves_to_loopback_is_refused(
    short_dir: Path, upstream: LocalServer
) -> None:
    port = port_of(upstream)

    async def scenario() -> list[bytes]:
        answers = []
        # Denied ranges by glob only, then none at all: loopback stays closed to a name either way.
        for denied in (["127.*"], []):
            async with proxy_at(short_dir, ["localhost"], [port], denied) as proxy:
                answers.append(
                    await exchange(proxy, f"CONNECT localhost:{port} HTTP/1.1\r\n\r\n".encode())
                )
        return answers

    answers = run(scenario)

    assert answers[0].startswith(b"HTTP/1.1 403 ")
    assert b"127.0.0.1 is in network.denied_hosts" in answers[0]
    assert answers[1].startswith(b"HTTP/1.1 403 ")
    assert b"loopback" in answers[1]
    assert upstream.requests == []


def test_a_host_or_port_not_granted_is_refused(short_dir: Path) -> None:
    async def scenario() -> list[bytes]:
        async with proxy_at(short_dir, ["*.example.com"], [443], ["10.*"]) as proxy:
            return [
                await exchange(proxy, b"CONNECT evil.test:443 HTTP/1.1\r\n\r\n"),
                await exchange(proxy, b"CONNECT api.example.com:22 HTTP/1.1\r\n\r\n"),
                await exchange(proxy, b"GET http://evil.test/x HTTP/1.1\r\nHost: evil\r\n\r\n"),
            ]

    host, port, forwarded = run(scenario)

    assert host.startswith(b"HTTP/1.1 403 ") and b"not in commands.network_hosts" in host
    assert port.startswith(b"HTTP/1.1 403 ") and b"port 22" in port
    assert forwarded.startswith(b"HTTP/1.1 403 ")
    assert host.split(b"\r\n\r\n", 1)[1] == b"host evil.test is not in commands.network_hosts\n"


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\xff\xfe garbage\r\n\r\n",
        b"CONNECT\r\n\r\n",
        b"CONNECT [::1:443 HTTP/1.1\r\n\r\n",
        b"CONNECT host:99999 HTTP/1.1\r\n\r\n",
        b"CONNECT h\xc3\xa9:443 HTTP/1.1\r\n\r\n",
        b"GET /relative HTTP/1.1\r\n\r\n",
        b"GET http://user:pw@example.com/ HTTP/1.1\r\n\r\n",
        b"X" * 40_000,
        b"",
    ],
)
def test_garbage_is_answered_and_the_proxy_keeps_serving(
    garbage: bytes, short_dir: Path, upstream: LocalServer
) -> None:
    port = port_of(upstream)

    async def scenario() -> tuple[bytes, bytes]:
        async with proxy_at(short_dir, ["127.0.0.1"], [port], DENIED_BUT_LOOPBACK) as proxy:
            reader, writer = await asyncio.open_unix_connection(str(proxy.socket_path))
            writer.write(garbage)
            writer.write_eof()
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            after = await exchange(
                proxy, f"GET http://127.0.0.1:{port}/ok HTTP/1.1\r\n\r\n".encode()
            )
            return answer, after

    answer, after = run(scenario)

    assert answer.split(b" ")[1] in (b"400", b"431")
    assert after.startswith(b"HTTP/1.0 200") or after.startswith(b"HTTP/1.1 200")


def test_a_permitted_tunnel_and_a_forwarded_request_reach_the_server(
    short_dir: Path, upstream: LocalServer
) -> None:
    # The explicit address entry is what opens loopback: a wildcard would not.
    port = port_of(upstream)

    async def scenario() -> tuple[bytes, bytes]:
        async with proxy_at(short_dir, ["127.0.0.1"], [port], DENIED_BUT_LOOPBACK) as proxy:
            reader, writer = await asyncio.open_unix_connection(str(proxy.socket_path))
            writer.write(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
            established = await reader.readuntil(b"\r\n\r\n")
            writer.write(b"GET /tunnelled HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            tunnelled = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            request = f"GET http://127.0.0.1:{port}/forwarded HTTP/1.1\r\nProxy-Authorization: x"
            forwarded = await exchange(proxy, f"{request}\r\n\r\n".encode())
            return established + tunnelled, forwarded

    tunnelled, forwarded = run(scenario)

    assert tunnelled.startswith(b"HTTP/1.1 200 Connection Established\r\n\r\n")
    assert b'{"path": "/tunnelled"}' in tunnelled
    assert b'{"path": "/forwarded"}' in forwarded
    assert [r[1] for r in upstream.requests] == ["/tunnelled", "/forwarded"]


def test_connections_beyond_the_limit_are_turned_away(
    short_dir: Path, upstream: LocalServer
) -> None:
    port = port_of(upstream)
    limits = ProxyLimits(max_connections=1)

    async def scenario() -> bytes:
        async with proxy_at(short_dir, ["127.0.0.1"], [port], [], limits) as proxy:
            reader, first = await asyncio.open_unix_connection(str(proxy.socket_path))
            first.write(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
            await reader.readuntil(b"\r\n\r\n")  # an open tunnel holds the only slot
            second = await exchange(proxy, f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
            first.close()
            return second

    assert run(scenario).startswith(b"HTTP/1.1 503 ")


def test_a_slow_head_times_out(short_dir: Path) -> None:
    async def scenario() -> bytes:
        limits = ProxyLimits(head_seconds=0.2)
        async with proxy_at(short_dir, ["*"], [443], [], limits) as proxy:
            reader, writer = await asyncio.open_unix_connection(str(proxy.socket_path))
            writer.write(b"CONNECT exa")
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return answer

    assert run(scenario).startswith(b"HTTP/1.1 408 ")


def test_the_socket_is_private_and_removed_at_the_end(short_dir: Path) -> None:
    async def scenario() -> int:
        async with proxy_at(short_dir, ["*"], [443], []) as proxy:
            return os.stat(proxy.socket_path).st_mode & 0o777

    assert run(scenario) == 0o600
    assert not (short_dir / "proxy.sock").exists()


def test_an_idle_tunnel_is_closed(short_dir: Path, upstream: LocalServer) -> None:
    port = port_of(upstream)

    async def scenario() -> bytes:
        limits = ProxyLimits(idle_seconds=0.2)
        async with proxy_at(short_dir, ["127.0.0.1"], [port], [], limits) as proxy:
            reader, writer = await asyncio.open_unix_connection(str(proxy.socket_path))
            writer.write(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
            await reader.readuntil(b"\r\n\r\n")
            # Nothing sent either way: the proxy ends the tunnel, the client sees the end.
            rest = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return rest

    assert run(scenario) == b""


def test_random_bytes_never_stop_the_proxy(short_dir: Path, upstream: LocalServer) -> None:
    port = port_of(upstream)
    generator = random.Random(11)
    payloads = [
        bytes(generator.randrange(256) for _ in range(generator.randrange(1, 300)))
        + b"\r\n\r\n" * generator.randrange(2)
        for _ in range(60)
    ]

    async def scenario() -> tuple[list[bytes], bytes]:
        async with proxy_at(short_dir, ["127.0.0.1"], [port], []) as proxy:
            answers = []
            for payload in payloads:
                reader, writer = await asyncio.open_unix_connection(str(proxy.socket_path))
                writer.write(payload)
                writer.write_eof()
                answers.append(await asyncio.wait_for(reader.read(), 10))
                writer.close()
            after = await exchange(
                proxy, f"GET http://127.0.0.1:{port}/still HTTP/1.1\r\n\r\n".encode()
            )
            return answers, after

    answers, after = run(scenario)

    assert all(a.startswith(b"HTTP/1.1 4") for a in answers)
    assert b'{"path": "/still"}' in after
