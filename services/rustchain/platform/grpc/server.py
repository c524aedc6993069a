"""One way to build a service's grpc.aio server: its servicers, health checking and reflection."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from rustchain.platform.grpc.decoding import (
    MessageLimitError,
    RequestGuard,
    max_message_bytes,
    transport_options,
)
from rustchain.platform.telemetry.instruments import instruments

LOOPBACK = "127.0.0.1"
OVERALL = ""
"""The health checking name of the server as a whole."""


@dataclass(frozen=True)
class ServiceBinding:
    """A servicer, the generated function that adds it to a server, and its full service name."""

    servicer: Any
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    full_name: str


class GrpcServerError(RuntimeError):
    """The server could not listen where it was asked to."""


@dataclass
class RunningServer:
    """A started server, the port it listens on and its health servicer."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    names: tuple[str, ...]

    async def stop(self, grace: float = 2.0) -> None:
        """Report NOT_SERVING, then stop, letting calls in flight finish within `grace` seconds."""
        for name in (*self.names, OVERALL):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(grace)


async def start_server(
    bindings: Sequence[ServiceBinding],
    port: int = 0,
    host: str = LOOPBACK,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    max_request_bytes: int | None = None,
) -> RunningServer:
    """Start a server with the services, health (SERVING for each) and reflection; port 0: any.

    Every request passes the RequestGuard, after the given interceptors: one larger than
    `max_request_bytes` (None: RUSTCHAIN_GRPC_MAX_MESSAGE_BYTES, else 4 MiB), undecodable or with an
    unknown enum number is answered INVALID_ARGUMENT before any servicer sees it.
    """
    try:
        limit = max_message_bytes(os.environ) if max_request_bytes is None else max_request_bytes
    except MessageLimitError as error:
        raise GrpcServerError(str(error)) from None
    server = grpc.aio.server(
        interceptors=[*interceptors, RequestGuard(limit)], options=transport_options(limit)
    )
    for binding in bindings:
        binding.add_to_server(binding.servicer, server)
    checker = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    names = tuple(b.full_name for b in bindings)
    reflection.enable_server_reflection(
        (
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as error:
        raise GrpcServerError(f"cannot listen on {host}:{port}: {error}") from None
    if bound == 0:
        raise GrpcServerError(f"cannot listen on {host}:{port}")
    await server.start()
    for name in (*names, OVERALL):
        await checker.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, bound, checker, names)


StatusTable = Mapping[type[BaseException], grpc.StatusCode]


def status_for(error: BaseException, table: StatusTable) -> grpc.StatusCode | None:
    """The status code of the first entry of the table the error is an instance of, or None."""
    for kind, code in table.items():
        if isinstance(error, kind):
            return code
    return None


# A service calling another on behalf of its caller (the planner) hands these refusals back as
# they are: they are about the caller's request or credential, not a fault of the service.
PASSED_THROUGH = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)


async def abort_with(
    context: grpc.aio.ServicerContext[Any, Any], error: Exception, table: StatusTable
) -> NoReturn:
    """End the call with the table's status for the error; an error not in it is re-raised.

    A refusal from a downstream service (PASSED_THROUGH) keeps its status and message."""
    if isinstance(error, grpc.aio.AioRpcError) and error.code() in PASSED_THROUGH:
        await context.abort(error.code(), error.details() or error.code().name.lower())
        raise AssertionError("context.abort returned")  # pragma: no cover
    code = status_for(error, table)
    if code is None:
        raise error
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        # Every quota refusal of every service is answered here: counted once, here.
        instruments().quota_refusals.add(1, {"error.type": type(error).__name__})
    await context.abort(code, " ".join(str(error).split()))
    raise AssertionError("context.abort returned")  # pragma: no cover
