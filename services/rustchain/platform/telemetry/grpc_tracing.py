"""The OpenTelemetry gRPC instrumentation (aio), added to servers and channels only while this
process exports spans: the W3C context then travels in each call's metadata."""

from __future__ import annotations

from typing import Any

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.instrumentation.grpc.filters import any_of, health_check, negate, service_name

from rustchain.platform.telemetry.setup import tracing_enabled

# Probes and reflection are not part of any mission: no span for them.
_UNTRACED = negate(any_of(health_check(), service_name("grpc.reflection.v1alpha.ServerReflection")))


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """The tracing interceptor for a server (none when tracing is off)."""
    if not tracing_enabled():
        return []
    interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(filter_=_UNTRACED)  # type: ignore[no-untyped-call]
    return [interceptor]


def client_interceptors() -> list[Any]:
    """The tracing interceptors for a channel (none when tracing is off)."""
    if not tracing_enabled():
        return []
    return list(aio_client_interceptors(filter_=_UNTRACED))  # type: ignore[no-untyped-call]
