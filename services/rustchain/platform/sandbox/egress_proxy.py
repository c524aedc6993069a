"""The egress proxy of sandboxed commands with a network grant: their only way out.

A sandbox has no network of its own; a command whose policy grants hosts
(`commands.network_hosts`) gets this proxy's Unix socket. It speaks HTTP/1.1: `CONNECT host:port`
opens a tunnel (TLS stays end to end), an absolute-form request (`GET http://host:port/path`) is
forwarded once. The host must match a granted glob and no denied one, the port must be granted,
and the name is resolved here and every address judged as the http steps judge theirs
(`steps.network_guard`), then the proxy connects to a judged address. Everything else gets a
status line and a one-line reason; nothing a client sends can stop the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rustchain.domain.policy.network_addresses import AddressRules
from rustchain.domain.policy.patterns import any_glob
from rustchain.platform.sandbox.egress_requests import (
    ProxyRefusedError,
    ProxyTarget,
    answer,
    read_target,
)
from rustchain.steps.support.network_guard import (
    NetworkTargetRefusedError,
    TargetGuard,
    UnresolvedTargetError,
)

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProxyLimits:
    """Bounds on what clients may cost the proxy."""

    max_connections: int = 64
    max_head_bytes: int = 16 * 1024
    head_seconds: float = 10.0
    connect_seconds: float = 10.0
    idle_seconds: float = 120.0


class EgressProxy:
    """A running proxy on a Unix socket; `start` is the only way to get one."""

    def __init__(
        self,
        socket_path: Path,
        hosts: Sequence[str],
        ports: Sequence[int],
        denied_hosts: Sequence[str],
        limits: ProxyLimits,
    ) -> None:
        self.socket_path = socket_path
        self._hosts = any_glob(list(hosts), ignore_case=True)
        self._denied = any_glob(list(denied_hosts), ignore_case=True)
        self._ports = frozenset(ports)
        self._guard = TargetGuard(AddressRules.of(denied_hosts, hosts))
        self._limits = limits
        self._active = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        socket_path: Path,
        hosts: Sequence[str],
        ports: Sequence[int],
        denied_hosts: Sequence[str],
        *,
        limits: ProxyLimits | None = None,
    ) -> AsyncIterator[EgressProxy]:
        """Serve on `socket_path` (only its owner may connect) until the block ends."""
        proxy = cls(socket_path, hosts, ports, denied_hosts, limits or ProxyLimits())
        server = await asyncio.start_unix_server(
            proxy._serve, path=str(socket_path), limit=proxy._limits.max_head_bytes
        )
        try:
            os.chmod(socket_path, 0o600)
            yield proxy
        finally:
            server.close()
            # Tunnels end with the command they served.
            for task in list(proxy._tasks):
                task.cancel()
            await asyncio.gather(*proxy._tasks, return_exceptions=True)
            await server.wait_closed()
            with contextlib.suppress(FileNotFoundError):
                socket_path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        full = self._active >= self._limits.max_connections
        self._active += 1
        try:
            if full:
                # Read what the client sent first: closing on unread bytes resets the connection
                # before the client could read the answer.
                with contextlib.suppress(TimeoutError, ConnectionError):
                    async with asyncio.timeout(1):
                        await reader.read(self._limits.max_head_bytes)
                await answer(writer, 503, "the egress proxy has too many connections open")
            else:
                await self._handle(reader, writer)
        except Exception as error:  # a client must never take the proxy down
            _log.warning("egress proxy: a connection ended with %r", error)
        except asyncio.CancelledError:
            # The proxy is stopping; asyncio (3.11) would log a cancelled handler as an error.
            pass
        finally:
            self._active -= 1
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            target = self._allowed(await read_target(reader, self._limits.head_seconds))
            upstream = await self._connect(target)
        except ProxyRefusedError as refusal:
            await answer(writer, refusal.status, refusal.reason)
            return
        up_reader, up_writer = upstream
        try:
            if target.tunnel:
                writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            else:
                up_writer.write(target.head)
            await _relay(reader, writer, up_reader, up_writer, self._limits.idle_seconds)
        finally:
            up_writer.close()
            with contextlib.suppress(Exception):
                await up_writer.wait_closed()

    def _allowed(self, target: ProxyTarget) -> ProxyTarget:
        host = target.host.lower()
        written = f"[{host}]" if ":" in host else host
        if not self._hosts.matches(written):
            raise ProxyRefusedError(403, f"host {written} is not in commands.network_hosts")
        if self._denied.matches(written):
            raise ProxyRefusedError(403, f"host {written} is in network.denied_hosts")
        if target.port not in self._ports:
            raise ProxyRefusedError(403, f"port {target.port} is not in network.ports")
        return target

    async def _connect(
        self, target: ProxyTarget
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        seconds = self._limits.connect_seconds
        try:
            addresses = await self._guard.addresses(target.host, target.port, seconds)
        except NetworkTargetRefusedError as error:
            raise ProxyRefusedError(403, str(error)) from None
        except UnresolvedTargetError as error:
            raise ProxyRefusedError(502, str(error)) from None
        failure = ""
        for address in addresses:
            try:
                async with asyncio.timeout(seconds):
                    return await asyncio.open_connection(address, target.port)
            except (OSError, TimeoutError) as error:
                failure = f"{address}: {error or 'timed out'}"
        raise ProxyRefusedError(502, f"cannot connect to {target.host}:{target.port} ({failure})")


async def _relay(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
    idle_seconds: float,
) -> None:
    """Copy both ways until both ends closed, or nothing moved either way for `idle_seconds`."""
    loop = asyncio.get_running_loop()
    last_moved = [loop.time()]

    async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                try:
                    async with asyncio.timeout(idle_seconds):
                        chunk = await source.read(64 * 1024)
                except TimeoutError:
                    if loop.time() - last_moved[0] < idle_seconds:
                        continue  # the other direction is busy: the tunnel is not idle
                    raise
                if not chunk:
                    if sink.can_write_eof():
                        sink.write_eof()
                    return
                last_moved[0] = loop.time()
                sink.write(chunk)
                await sink.drain()

    tasks = [
        asyncio.create_task(pump(client_reader, up_writer)),
        asyncio.create_task(pump(up_reader, client_writer)),
    ]
    try:
        await asyncio.gather(*tasks)
    except TimeoutError:
        pass
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
