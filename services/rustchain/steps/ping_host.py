"""The `ping_host` step: is a host reachable? Timed TCP connections, not ICMP echo.

RustChain ran the system `ping`. ICMP needs a raw socket (CAP_NET_RAW, or a ping group the
sandbox's user is not in), and the sandbox gives programs no network but the egress proxy, which
carries TCP only; so this step "pings" by opening (and closing) `count` TCP connections to
`port`, like `tcping`. The host and port are judged by the `network` section and every
connection goes to a resolved address the policy allows. It fails when no attempt answered.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, Use, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.network_guard import UnresolvedTargetError
from rustchain.steps.support.remote_targets import (
    ConnectFailedError,
    connect_socket,
    resolve_target,
)
from rustchain.steps.support.runtime import StepContext, StepRunError


class PingHostParameters(BaseModel):
    """RustChain's `host` and `count`; our `port` and per-attempt `timeout_seconds`."""

    model_config = PARAMETERS
    host: Annotated[str, Field(min_length=1)]
    count: Annotated[int, Field(ge=1, le=100)] = 4
    port: Annotated[int, Field(ge=1, le=65535)] = 443
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 2.0


async def ping_host(params: PingHostParameters, context: StepContext) -> dict[str, Any]:
    """`count` timed connections; the output lists each round trip (None: no answer)."""
    timeout = min(params.timeout_seconds, context.timeout_seconds)
    try:
        target = await resolve_target(context, "network", params.host, params.port, timeout)
    except UnresolvedTargetError as error:
        raise StepRunError(str(error)) from None
    times: list[float | None] = []
    lines: list[str] = []
    last_error = ""
    for sequence in range(1, params.count + 1):
        started = time.perf_counter()
        try:
            sock = await connect_socket(target, timeout)
        except ConnectFailedError as error:
            times.append(None)
            last_error = str(error)
            lines.append(f"seq={sequence} no answer: {error}")
            continue
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        sock.close()
        times.append(elapsed)
        lines.append(f"seq={sequence} connected to {params.host}:{params.port} time={elapsed} ms")
    received = sum(1 for t in times if t is not None)
    if received == 0:
        raise StepRunError(
            f"{params.host} port {params.port} answered none of {params.count} TCP connection "
            f"attempts: {last_error}"
        )
    return {
        "host": params.host,
        "port": params.port,
        "count": params.count,
        "success": True,
        "received": received,
        "times_ms": times,
        "output": "\n".join(lines),
    }


STEP_TYPE = StepDefinition(
    "ping_host", "Check that a host answers (TCP connect)", PingHostParameters, run=ping_host
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """Host and port under the `network` section."""
    parameters = step.parameters
    return [
        *text_uses(Sink.NETWORK_HOST, "host", parameters.get("host")),
        Use(Sink.NETWORK_PORT, "port", str(parameters.get("port", 443))),
    ]


CONSTRAINTS = constraints
