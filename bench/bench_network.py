"""Network targets (issue 11): what resolving and judging every address adds to an http request,
against plain httpx, to a loopback server a test policy allows; and a request through the
egress proxy against the same request made directly."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from rustchain.domain.policy.model import NetworkPolicy, Policy
from rustchain.platform.sandbox.egress_proxy import EgressProxy
from rustchain.steps.support.guarded_http import guarded_client
from rustchain.steps.support.network_guard import guard_for
from rustchain.steps.support.runtime import StepContext

REQUESTS = 500
_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(_ANSWER)
    await writer.drain()
    writer.close()


async def _p50(call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    for _ in range(20):  # warm up: imports, SSL context, caches
        await call()
    samples = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    ordered = sorted(samples)
    return statistics.median(samples), ordered[int(len(ordered) * 0.99) - 1]


async def _figures() -> list[tuple[str, tuple[float, float]]]:
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    network = NetworkPolicy(
        schemes=["http"], allowed_hosts=["127.0.0.1", "localhost"], denied_hosts=[], ports=[port]
    )
    context = StepContext("bench", "m", "s", Path("."), 30, policy=Policy(network=network))
    shared = httpx.create_ssl_context(trust_env=False)
    figures = []
    for host in ("127.0.0.1", "localhost"):
        url = f"http://{host}:{port}/"

        async def before(url: str = url) -> object:
            # As the http step did before: one client per request, each loading the CA bundle.
            async with httpx.AsyncClient(trust_env=False) as client:
                return (await client.get(url)).status_code

        async def plain(url: str = url) -> object:
            # The same client but for the guard: one connection per request, a shared context.
            async with httpx.AsyncClient(verify=shared, trust_env=False) as client:
                return (await client.get(url)).status_code

        async def guarded(url: str = url) -> object:
            async with guarded_client(context, 30) as client:
                return (await client.get(url)).status_code

        figures.append((f"http step client before, {host}", await _p50(before)))
        figures.append((f"plain httpx, {host}", await _p50(plain)))
        figures.append((f"guarded client, {host}", await _p50(guarded)))
    guard = guard_for(context)
    figures.append(
        (
            "resolve and judge alone, localhost",
            await _p50(lambda: guard.addresses("localhost", port)),
        )
    )
    with tempfile.TemporaryDirectory(prefix="bench-", dir="/tmp") as folder:
        async with EgressProxy.start(Path(folder) / "p.sock", ["127.0.0.1"], [port], []) as proxy:

            async def direct() -> object:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = await reader.read()
                writer.close()
                return answer

            async def proxied() -> object:
                reader, writer = await asyncio.open_unix_connection(str(proxy.socket_path))
                writer.write(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = await reader.read()
                writer.close()
                return answer

            figures.append(("raw request, direct", await _p50(direct)))
            figures.append(("raw request, CONNECT through the egress proxy", await _p50(proxied)))
    server.close()
    await server.wait_closed()
    return figures


def main() -> None:
    """Print p50 and p99 per request, and the guard's added cost at p50."""
    figures = asyncio.run(_figures())
    for name, (p50, p99) in figures:
        print(f"{name}: p50 {p50 * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms ({REQUESTS} requests)")
    by_name = {name: p50 for name, (p50, _) in figures}
    for host in ("127.0.0.1", "localhost"):
        added = by_name[f"guarded client, {host}"] - by_name[f"plain httpx, {host}"]
        print(f"the guard adds {added * 1e6:.0f} us per request to {host} at p50")
    proxy_added = (
        by_name["raw request, CONNECT through the egress proxy"] - by_name["raw request, direct"]
    )
    print(f"the egress proxy adds {proxy_added * 1e6:.0f} us per connection at p50")


if __name__ == "__main__":
    main()
