"""The `websocket_connect` step: open a WebSocket, send messages, optionally read replies.

RustChain's was send-only; this one also waits for `receive` messages, within `timeout_seconds`.
The URL is judged as an `http` step's is (`network` section: schemes `ws`/`wss` must be listed),
and the TCP connection goes to a resolved address the policy allows, handed to the `websockets`
library as a ready socket: with it the library uses no proxy from the environment and refuses to
follow redirects, so the server can not send the step anywhere else.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.checks import byte_bound, check_bytes, check_url
from rustchain.domain.policy.obligations import ByteUse, Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.network_guard import UnresolvedTargetError, guard_for
from rustchain.steps.support.remote_targets import ConnectFailedError, Target, connect_socket
from rustchain.steps.support.runtime import StepContext, StepRunError

RESPONSE_RULE = "network.response"
_DEFAULT_PORTS = {"ws": 80, "wss": 443}


class WebSocketParameters(BaseModel):
    """RustChain's `url` and `message`; our `messages`, `receive` and bounds."""

    model_config = PARAMETERS
    url: Annotated[str, Field(min_length=1)]
    message: str = ""
    # Sent after `message`, in order, each as one text frame.
    messages: list[str] = Field(default_factory=list)
    # How many messages to wait for after sending (0: send only, as RustChain did).
    receive: Annotated[int, Field(ge=0, le=1000)] = 0
    timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 10.0
    # None: the policy's bound (network.max_response_bytes), for all messages received together.
    max_response_bytes: Annotated[int, Field(ge=1)] | None = None


def _target(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise StepRunError(f"url '{url}' is not a valid URL: {error}") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise StepRunError(f"url '{url}' is not a ws:// or wss:// URL with a host")
    return parts.scheme, parts.hostname, port or _DEFAULT_PORTS[parts.scheme]


async def websocket_connect(params: WebSocketParameters, context: StepContext) -> dict[str, Any]:
    """Connect, send, receive; the output says what was sent and lists what came back."""
    # Loaded when the step runs, not when a mission is validated.
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidURI, WebSocketException

    context.enforce(check_url, params.url)
    max_response = byte_bound(context.enforced_policy, RESPONSE_RULE)
    if params.max_response_bytes is not None:
        context.enforce(check_bytes, RESPONSE_RULE, "max_response_bytes", params.max_response_bytes)
        max_response = params.max_response_bytes
    scheme, host, port = _target(params.url)
    timeout = min(params.timeout_seconds, context.timeout_seconds)
    outgoing = [m for m in (params.message, *params.messages) if m]
    try:
        addresses = await guard_for(context).addresses(host, port, timeout)
        sock = await connect_socket(Target(host, port, addresses), timeout)
    except (UnresolvedTargetError, ConnectFailedError) as error:
        raise StepRunError(f"cannot connect to {params.url}: {error}") from None
    tls = ssl.create_default_context() if scheme == "wss" else None
    received: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            async with connect(
                params.url,
                sock=sock,
                ssl=tls,
                server_hostname=host if tls else None,
                open_timeout=None,
                max_size=max_response,
                compression=None,
            ) as websocket:
                for text in outgoing:
                    await websocket.send(text)
                size = 0
                for _ in range(params.receive):
                    reply = await websocket.recv()
                    text = reply if isinstance(reply, str) else reply.decode("utf-8", "replace")
                    size += len(text.encode("utf-8"))
                    if size > max_response:
                        raise StepRunError(
                            f"{params.url} sent more than max_response_bytes ({max_response})"
                        )
                    received.append(text)
    except TimeoutError:
        raise StepRunError(
            f"{params.url}: {len(received)} of {params.receive} messages within {timeout:g} s"
        ) from None
    except (InvalidURI, WebSocketException, OSError, ValueError) as error:
        raise StepRunError(f"WebSocket {params.url} failed: {error}") from None
    finally:
        sock.close()
    return {
        "url": params.url,
        "connected": True,
        "message_sent": bool(outgoing),
        "sent": len(outgoing),
        "received": received,
    }


STEP_TYPE = StepDefinition(
    "websocket_connect",
    "Send and receive WebSocket messages",
    WebSocketParameters,
    run=websocket_connect,
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The URL as an http step's; what is kept within the response bound."""
    parameters = step.parameters
    return [
        *text_uses(Sink.URL, "url", parameters.get("url")),
        ByteUse(RESPONSE_RULE, "max_response_bytes", parameters.get("max_response_bytes")),
    ]


CONSTRAINTS = constraints
