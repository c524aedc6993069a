"""Real gRPC services for tests: each on a free loopback port, state under a temporary home."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from rustchain.cli.serve import serve
from rustchain.platform.grpc.client import open_channel

START_TIMEOUT_SECONDS = 20.0
FULL_NAMES = {
    "planner": "rustchain.planner.v1.PlannerService",
    "verifier": "rustchain.verifier.v1.VerifierService",
    "executor": "rustchain.executor.v1.ExecutorService",
    "memory": "rustchain.memory.v1.MemoryService",
    "trainer": "rustchain.trainer.v1.TrainerService",
}
"""Each service's full gRPC name, as health checking and reflection know it."""


@dataclass
class Services:
    """The endpoints of the services a test started, and channels to them."""

    home: Path
    endpoints: dict[str, str] = field(default_factory=dict)
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)

    def channel(self, service: str) -> grpc.aio.Channel:
        """A channel to a service (opened once)."""
        if service not in self.channels:
            self.channels[service] = open_channel(self.endpoints[service])
        return self.channels[service]


async def _start(
    service: str,
    environ: Mapping[str, str],
    peers: Mapping[str, str],
    stop: asyncio.Event,
    tasks: list[asyncio.Task[None]],
) -> str:
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(serve(service, 0, environ, peers, stop, bound.set_result))
    tasks.append(task)

    def stopped(done: asyncio.Task[None]) -> None:
        if not bound.done():
            failure = None if done.cancelled() else done.exception()
            bound.set_exception(failure or RuntimeError(f"the {service} service stopped at start"))

    task.add_done_callback(stopped)
    await asyncio.wait_for(bound, START_TIMEOUT_SECONDS)
    return f"127.0.0.1:{bound.result()}"


@contextlib.asynccontextmanager
async def running_services(
    home: Path,
    services: tuple[str, ...] = ("verifier", "memory", "executor", "planner"),
    nats_url: str | None = None,
    settings: Mapping[str, str] | None = None,
) -> AsyncIterator[Services]:
    """Start the services in order (each later one told the earlier ones), stop them all after;
    `settings` are more environment variables for them (quotas, limits)."""
    environ = {"RUSTCHAIN_HOME": str(home), **(settings or {})}
    if nats_url is not None:
        environ["NATS_URL"] = nats_url
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    started = Services(home)
    try:
        for service in services:
            started.endpoints[service] = await _start(
                service, environ, dict(started.endpoints), stop, tasks
            )
        yield started
    finally:
        for channel in started.channels.values():
            await channel.close()
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.contextmanager
def services_in_thread(
    home: Path, services: tuple[str, ...], nats_url: str | None = None
) -> Iterator[dict[str, str]]:
    """The services of `running_services` on an event loop of their own thread, for tests that
    share one deployment across many cases and call it with blocking stubs; yields endpoints."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="grpc-services", daemon=True)
    thread.start()
    finished = asyncio.Event()
    started: concurrent.futures.Future[dict[str, str]] = concurrent.futures.Future()

    async def host() -> None:
        async with running_services(home, services, nats_url) as running:
            started.set_result(dict(running.endpoints))
            await finished.wait()

    hosting = asyncio.run_coroutine_threadsafe(host(), loop)
    try:
        concurrent.futures.wait(
            [started, hosting],
            timeout=START_TIMEOUT_SECONDS * len(services),
            return_when=concurrent.futures.FIRST_COMPLETED,
        )
        if not started.done():
            hosting.result(timeout=0)  # raises why it stopped, or TimeoutError
        yield started.result()
    finally:
        loop.call_soon_threadsafe(finished.set)
        try:
            hosting.result(timeout=START_TIMEOUT_SECONDS)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
