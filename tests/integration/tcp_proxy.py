"""A TCP proxy the test controls, to cut a process off from a server (PostgreSQL) and heal it.

It runs its own asyncio loop in a thread, so processes of any kind connect through it while the
test goes on. `blackhole()` stops forwarding in both directions and accepts nothing new (as a
partitioned network drops packets: peers see silence, not a reset); `heal()` forwards again,
delivering what was held back, so a client that was cut off mid-transaction carries on as a
late writer; `drop()` closes every connection (as a reset).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from rustchain.platform.grpc.server import LOOPBACK

CHUNK = 65536


class TcpProxy:
    """Forwards connections on `LOOPBACK:port` to `target_host:target_port`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._flowing: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.connections = 0

    def start(self) -> TcpProxy:
        """Listen on a free port (`self.port`)."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    async def _listen(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, LOOPBACK, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        # A new connection during a partition waits as a SYN would, unanswered.
        await self._flowing.wait()
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.connections += 1
        self._writers |= {writer, upstream_writer}
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        try:
            while data := await reader.read(CHUNK):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _call(self, function: object) -> None:
        async def run() -> None:
            assert callable(function)
            function()

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def blackhole(self) -> None:
        """Forward nothing more, either way, until healed."""
        assert self._flowing is not None
        self._call(self._flowing.clear)

    def heal(self) -> None:
        """Forward again, what was held back first."""
        assert self._flowing is not None
        self._call(self._flowing.set)

    def drop(self) -> None:
        """Close every connection through the proxy (new ones are accepted)."""

        def close_all() -> None:
            for writer in list(self._writers):
                writer.close()

        self._call(close_all)

    def stop(self) -> None:
        """Close everything and end the thread."""

        async def shut() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.close()

        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@contextlib.contextmanager
def tcp_proxy(target_host: str, target_port: int) -> Iterator[TcpProxy]:
    """A running proxy to the target, stopped afterwards."""
    proxy = TcpProxy(target_host, target_port).start()
    try:
        yield proxy
    finally:
        proxy.stop()
