"""The `http` step: make an HTTP request; the response is the step's output."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.checks import byte_bound, check_bytes, check_url
from rustchain.domain.policy.obligations import ByteUse, Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext, StepRunError, read_workspace_file

MAX_BODY_BYTES = 10 * 1024 * 1024
RESPONSE_RULE = "network.response"

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class HttpParameters(BaseModel):
    """URL, method, headers and body, with limits on time and response size."""

    model_config = PARAMETERS
    url: Annotated[str, Field(min_length=1)]
    method: Method = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    body_file: Annotated[str, Field(min_length=1)] | None = None
    timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    expected_status: list[int] | int | None = None
    # None: the policy's bound (network.max_response_bytes); a larger value is refused.
    max_response_bytes: Annotated[int, Field(ge=1)] | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


async def http(params: HttpParameters, context: StepContext) -> dict[str, Any]:
    """Make the request; the output is the status, headers and body (JSON when it is JSON)."""
    # Imported when a step runs, not when a mission is compiled: `rustchain validate` needs none.
    import httpx

    from rustchain.steps.support.guarded_http import guarded_client

    context.check(check_url, params.url)
    _check_request(params)
    max_response = byte_bound(context.enforced_policy, RESPONSE_RULE)
    if params.max_response_bytes is not None:
        context.enforce(check_bytes, RESPONSE_RULE, "max_response_bytes", params.max_response_bytes)
        max_response = params.max_response_bytes
    timeout = min(params.timeout_seconds, context.timeout_seconds)
    request_kwargs: dict[str, Any] = {"headers": params.headers}
    if params.body_file is not None:
        request_kwargs["content"] = read_workspace_file(
            context, params.body_file, MAX_BODY_BYTES, "body_file "
        )
    elif isinstance(params.body, str):
        request_kwargs["content"] = params.body.encode("utf-8")
    elif params.body is not None:
        request_kwargs["json"] = params.body
    try:
        async with (
            guarded_client(context, timeout) as client,
            client.stream(params.method, params.url, **request_kwargs) as response,
        ):
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_response:
                    raise StepRunError(
                        f"the response of {params.url} is larger than max_response_bytes "
                        f"({max_response})"
                    )
    except httpx.InvalidURL as error:
        raise StepRunError(f"url '{params.url}' is not a valid URL: {error}") from None
    except httpx.HTTPError as error:
        raise StepRunError(f"{params.method} {params.url} failed: {error}") from None
    expected = params.expected_status
    wanted = [expected] if isinstance(expected, int) else expected
    if wanted is not None and response.status_code not in wanted:
        raise StepRunError(
            f"{params.method} {params.url} answered {response.status_code}, expected {wanted}"
        )
    if wanted is None and response.status_code >= 400:
        raise StepRunError(f"{params.method} {params.url} answered {response.status_code}")
    text = body.decode(response.encoding or "utf-8", errors="replace")
    parsed: Any = text
    if "json" in response.headers.get("content-type", ""):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
    return {"status": response.status_code, "headers": dict(response.headers), "body": parsed}


def _check_request(params: HttpParameters) -> None:
    """Refuse, naming the parameter, what httpx would raise on (not an HTTPError) at send time."""
    import httpx

    try:
        port = httpx.URL(params.url).port
    except httpx.InvalidURL as error:
        raise StepRunError(f"url '{params.url}' is not a valid URL: {error}") from None
    if port is not None and not 0 < port < 65536:
        raise StepRunError(f"url '{params.url}' has port {port}, outside 1-65535")
    for name, value in params.headers.items():
        # httpx sends header names and values as ASCII; CR, LF and NUL would split or end one.
        text = name + value
        if any(c in text for c in "\r\n\x00") or not text.isascii():
            raise StepRunError(
                f"headers.{name!r} cannot be sent: header names and values are ASCII text "
                "without CR, LF or NUL"
            )


STEP_TYPE = StepDefinition("http", "Make an HTTP request", HttpParameters, run=http)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The URL must use an allowed scheme, host and port; a body_file is a path read."""
    parameters = step.parameters
    return [
        *text_uses(Sink.URL, "url", parameters.get("url")),
        *text_uses(Sink.PATH_READ, "body_file", parameters.get("body_file")),
        ByteUse(RESPONSE_RULE, "max_response_bytes", parameters.get("max_response_bytes")),
    ]


CONSTRAINTS = constraints
