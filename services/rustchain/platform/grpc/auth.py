"""Authentication and authorisation of every RPC: a bearer token in the call's metadata.

The server interceptor verifies the token (UNAUTHENTICATED when missing, forged or expired) and
checks that its holder may read or write the tenant the call names (PERMISSION_DENIED otherwise,
saying nothing of what exists). Health checking and reflection stay open for probes and grpcurl.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rustchain.domain.access.credentials import (
    Access,
    CredentialError,
    PermissionDeniedError,
    authorize,
)
from rustchain.platform.credentials.tokens import TOKEN_VARIABLE, verify

AUTHORIZATION = "authorization"
TENANT_METADATA = "x-rustchain-tenant"
DEFAULT_TENANT = "default"
OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")
WRITE_METHODS = frozenset(
    {
        "SubmitMission",
        "StartMission",
        "CancelMission",
        "VerifyPlan",
        "Put",
        "Delete",
        "PutVector",
        "Optimize",
        "RollbackPolicy",
    }
)

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"

# The token of the call being served (or of the CLI command), forwarded on calls it makes.
CALL_TOKEN: contextvars.ContextVar[str | None] = contextvars.ContextVar("call_token", default=None)


def outgoing_token() -> str | None:
    """The token to send: the one of the call being served, else RUSTCHAIN_TOKEN."""
    return CALL_TOKEN.get() or os.environ.get(TOKEN_VARIABLE) or None


def bearer(metadata: Any) -> str | None:
    """The bearer token of a call's metadata, if any."""
    for key, value in metadata or ():
        if key == AUTHORIZATION and isinstance(value, str) and value.startswith("Bearer "):
            return value.removeprefix("Bearer ").strip() or None
    return None


def access_of(method: str) -> Access:
    """Whether an RPC (`/package.Service/Method`) reads or writes its tenant's data."""
    return Access.WRITE if method.rpartition("/")[2] in WRITE_METHODS else Access.READ


def _denial(handler: Handler, code: grpc.StatusCode, details: str) -> Handler:
    """A handler of the same shape as the real one that only refuses."""

    async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(code, details)

    async def refuse_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(code, details)
        yield  # pragma: no cover - abort raises

    arguments = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    denial: Handler
    if handler.request_streaming and handler.response_streaming:
        denial = grpc.stream_stream_rpc_method_handler(refuse_stream, **arguments)
    elif handler.request_streaming:
        denial = grpc.stream_unary_rpc_method_handler(refuse, **arguments)
    elif handler.response_streaming:
        denial = grpc.unary_stream_rpc_method_handler(refuse_stream, **arguments)
    else:
        denial = grpc.unary_unary_rpc_method_handler(refuse, **arguments)
    return denial


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Refuses every call without a valid token for the tenant it names."""

    def __init__(self, key: Ed25519PublicKey) -> None:
        self._key = key

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        """Let the call through, or answer it with UNAUTHENTICATED / PERMISSION_DENIED."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        metadata = handler_call_details.invocation_metadata
        token = bearer(metadata)
        tenant = next(
            (v for k, v in metadata or () if k == TENANT_METADATA and isinstance(v, str) and v),
            DEFAULT_TENANT,
        )
        try:
            if token is None:
                raise CredentialError("no bearer token in the call's metadata")
            authorize(verify(self._key, token), tenant, access_of(method))
        except CredentialError as error:
            return _denial(handler, grpc.StatusCode.UNAUTHENTICATED, str(error))
        except PermissionDeniedError as error:
            return _denial(handler, grpc.StatusCode.PERMISSION_DENIED, str(error))
        return handler
