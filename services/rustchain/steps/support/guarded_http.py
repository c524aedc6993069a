"""httpx clients whose every connection goes through a step's `TargetGuard`.

Apart from `network_guard` so that a step type that only needs the guard (SSH, FTP, WebSocket)
does not load httpx when a mission is validated.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from rustchain.steps.support.network_guard import (
    NetworkTargetRefusedError,
    TargetGuard,
    UnresolvedTargetError,
    guard_for,
)
from rustchain.steps.support.runtime import StepContext


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend whose every TCP connection goes to a checked address."""

    def __init__(self, guard: TargetGuard) -> None:
        self._guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to the first allowed address of `host` that answers."""
        try:
            addresses = await self._guard.addresses(host, port, timeout)
        except UnresolvedTargetError as error:
            raise httpcore.ConnectError(str(error)) from None
        for address in addresses[:-1]:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue
        return await self._inner.connect_tcp(
            addresses[-1], port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Never: a mission's target is a host and a port."""
        raise NetworkTargetRefusedError(f"[network.address] a Unix socket ({path}) is no target")

    async def sleep(self, seconds: float) -> None:
        """As the default backend sleeps."""
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a connection pool that connects through a `TargetGuard`.

    httpx 0.28 takes no network backend, so the pool is replaced after construction: the rest of
    the transport (request conversion, error mapping) stays httpx's own.
    """

    def __init__(self, guard: TargetGuard, ssl_context: ssl.SSLContext | None = None) -> None:
        context = ssl_context or _default_ssl_context()
        super().__init__(verify=context, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context, network_backend=GuardedBackend(guard)
        )


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~20 ms; a step makes one client, so the context is shared.
    return httpx.create_ssl_context(trust_env=False)


def guarded_client(context: StepContext, timeout: float, **options: Any) -> httpx.AsyncClient:
    """An httpx client for the step's own targets: no redirects, no proxies from the
    environment, every connection through the guard."""
    return httpx.AsyncClient(
        transport=GuardedTransport(guard_for(context)),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        **options,
    )
