"""The `service_health` step: is a service up? A TCP connect, or an HTTP GET when `url` is given.

RustChain's version meant to connect to `localhost:<port>` but always failed parsing the address;
this one does the probe it promised, to a host the tenant's `network` section allows (by default
`localhost` is denied: a tenant must allow the address it probes). The step succeeds either way:
`healthy` says what the probe found; only a refused or malformed target fails it.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.checks import check_url
from rustchain.domain.policy.obligations import Obligation, Use, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.network_guard import UnresolvedTargetError
from rustchain.steps.support.remote_targets import (
    ConnectFailedError,
    connect_socket,
    resolve_target,
)
from rustchain.steps.support.runtime import StepContext


class ServiceHealthParameters(BaseModel):
    """RustChain's `service` and `port`; our `host`, `url` and `timeout_seconds`."""

    model_config = PARAMETERS
    service: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 80
    host: Annotated[str, Field(min_length=1)] = "localhost"
    # An HTTP(S) URL to GET instead of a TCP connect: healthy when it answers below 400.
    url: Annotated[str, Field(min_length=1)] | None = None
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 5.0


async def service_health(params: ServiceHealthParameters, context: StepContext) -> dict[str, Any]:
    """Probe the service; `healthy` is the answer, `error` why not."""
    timeout = min(params.timeout_seconds, context.timeout_seconds)
    started = time.perf_counter()
    if params.url is not None:
        output: dict[str, Any] = {"service": params.service, "url": params.url}
        output.update(await _http_probe(params.url, context, timeout))
    else:
        output = {"service": params.service, "host": params.host, "port": params.port}
        output.update(await _tcp_probe(params, context, timeout))
    output["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 3)
    return output


async def _tcp_probe(
    params: ServiceHealthParameters, context: StepContext, timeout: float
) -> dict[str, Any]:
    try:
        target = await resolve_target(context, "network", params.host, params.port, timeout)
        sock = await connect_socket(target, timeout)
    except (UnresolvedTargetError, ConnectFailedError) as error:
        return {"healthy": False, "error": str(error)}
    sock.close()
    return {"healthy": True, "error": None}


async def _http_probe(url: str, context: StepContext, timeout: float) -> dict[str, Any]:
    import httpx  # loaded when a probe runs, not when a mission is validated

    from rustchain.steps.support.guarded_http import guarded_client

    context.enforce(check_url, url)
    try:
        async with guarded_client(context, timeout) as client:
            response = await client.get(url)
    except httpx.InvalidURL as error:
        return {"healthy": False, "status": None, "error": f"not a valid URL: {error}"}
    except httpx.HTTPError as error:
        return {"healthy": False, "status": None, "error": f"GET {url} failed: {error}"}
    healthy = response.status_code < 400
    why = None if healthy else f"GET {url} answered {response.status_code}"
    return {"healthy": healthy, "status": response.status_code, "error": why}


STEP_TYPE = StepDefinition(
    "service_health",
    "Check that a service answers (TCP connect or HTTP GET)",
    ServiceHealthParameters,
    run=service_health,
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """With `url`: the URL must be allowed; else host and port under the `network` section."""
    parameters = step.parameters
    if isinstance(parameters.get("url"), str):
        return text_uses(Sink.URL, "url", parameters["url"])
    host = parameters.get("host", "localhost")
    port = parameters.get("port", 80)
    return [
        *text_uses(Sink.NETWORK_HOST, "host", host),
        Use(Sink.NETWORK_PORT, "port", str(port)),
    ]


CONSTRAINTS = constraints
