"""Channels to services, the tenant metadata, and one clear error when a service is unreachable."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import grpc

from rustchain.platform.grpc.auth import outgoing_token
from rustchain.platform.grpc.spreading import channel_target
from rustchain.platform.telemetry.grpc_tracing import client_interceptors

TENANT_METADATA = "x-rustchain-tenant"
DEFAULT_TENANT = "default"
CONNECT_TIMEOUT_SECONDS = 5.0


class ServiceUnavailableError(RuntimeError):
    """A service did not answer at its endpoint; the message is one line that names it."""

    def __init__(self, service: str, endpoint: str, detail: str = "") -> None:
        detail = " ".join(detail.split())
        suffix = f" ({detail})" if detail else ""
        super().__init__(f"the {service} service at {endpoint} is unreachable{suffix}")
        self.service = service
        self.endpoint = endpoint


def open_channel(endpoint: str) -> grpc.aio.Channel:
    """An insecure channel to `host:port` (loopback deployments; TLS arrives with auth), or
    spread over the replicas of a list `ip:port,ip:port` (`platform/grpc/spreading.py`); its calls
    carry the trace context while this process exports spans.

    Raises ReplicaListError for a list gRPC cannot balance over."""
    target, options = channel_target(endpoint)
    return grpc.aio.insecure_channel(
        target, options=options or None, interceptors=client_interceptors() or None
    )


async def wait_ready(
    channel: grpc.aio.Channel,
    service: str,
    endpoint: str,
    timeout: float = CONNECT_TIMEOUT_SECONDS,
    fail_fast: bool = True,
) -> None:
    """Return once the channel is connected, or raise ServiceUnavailableError.

    With `fail_fast`, the first failed connection attempt (nothing listens there) ends the wait;
    otherwise the channel keeps retrying (a restarting service) until `timeout`.
    """
    try:
        await asyncio.wait_for(_connected(channel, service, endpoint, fail_fast), timeout)
    except TimeoutError:
        raise ServiceUnavailableError(
            service, endpoint, f"no answer within {timeout:g} s"
        ) from None


async def _connected(
    channel: grpc.aio.Channel, service: str, endpoint: str, fail_fast: bool
) -> None:
    state = channel.get_state(try_to_connect=True)
    while state is not grpc.ChannelConnectivity.READY:
        if state is grpc.ChannelConnectivity.SHUTDOWN:
            raise ServiceUnavailableError(service, endpoint, "the channel is closed")
        if fail_fast and state is grpc.ChannelConnectivity.TRANSIENT_FAILURE:
            raise ServiceUnavailableError(service, endpoint, "connection failed")
        await channel.wait_for_state_change(state)
        state = channel.get_state(try_to_connect=True)


def tenant_metadata(tenant: str) -> tuple[tuple[str, str], ...]:
    """The call metadata that names the tenant, with the bearer token when there is one."""
    token = outgoing_token()
    if token is None:
        return ((TENANT_METADATA, tenant),)
    return ((TENANT_METADATA, tenant), ("authorization", f"Bearer {token}"))


def tenant_of(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The tenant named in a call's invocation metadata, or the default tenant."""
    for key, value in metadata or ():
        if key == TENANT_METADATA and isinstance(value, str) and value:
            return value
    return DEFAULT_TENANT


def call_error(error: grpc.aio.AioRpcError, service: str, endpoint: str) -> Exception:
    """The error to raise for a failed call: ServiceUnavailableError when it could not connect."""
    if error.code() is grpc.StatusCode.UNAVAILABLE:
        return ServiceUnavailableError(service, endpoint, error.details() or "")
    return error
