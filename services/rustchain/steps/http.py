"""The `http` step: make an HTTP request; the response is the step's output."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from rustchain.domain.plan import PlannedStep
from rustchain.domain.policy_obligations import Obligation, text_uses
from rustchain.domain.policy_rules import Sink
from rustchain.steps.definition import PARAMETERS, StepDefinition

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class HttpParameters(BaseModel):
    """URL, method, headers and body, with limits on time and response size."""

    model_config = PARAMETERS
    url: Annotated[str, Field(min_length=1)]
    method: Method = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    expected_status: list[int] | int | None = None
    max_response_bytes: Annotated[int, Field(ge=1)] = 10 * 1024 * 1024

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


STEP_TYPE = StepDefinition("http", "Make an HTTP request", HttpParameters)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The URL must use an allowed scheme, host and port."""
    return text_uses(Sink.URL, "url", step.parameters.get("url"))


CONSTRAINTS = constraints
