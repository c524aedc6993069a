"""The `validate_schema` step: check data against a JSON Schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

from rustchain.domain.plan import PlannedStep
from rustchain.domain.policy_obligations import Obligation, text_uses
from rustchain.domain.policy_rules import Sink
from rustchain.steps.definition import PARAMETERS, StepDefinition


class ValidateSchemaParameters(BaseModel):
    """The schema, and the data to check: inline, as JSON text, or from a workspace file."""

    model_config = PARAMETERS
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    schema_path: str | None = None
    data: Any = None
    content: str | None = None
    path: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> ValidateSchemaParameters:
        if (self.schema_ is None) == (self.schema_path is None):
            raise ValueError(
                "a validate_schema step needs exactly one of 'schema' or 'schema_path'"
            )
        if sum(x is not None for x in (self.data, self.content, self.path)) != 1:
            raise ValueError(
                "a validate_schema step needs exactly one of 'data', 'content' or 'path'"
            )
        return self


STEP_TYPE = StepDefinition(
    "validate_schema", "Check data against a JSON Schema", ValidateSchemaParameters
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The schema and data files read must stay in the workspace, outside denied paths."""
    parameters = step.parameters
    return [
        *text_uses(Sink.PATH_READ, "schema_path", parameters.get("schema_path")),
        *text_uses(Sink.PATH_READ, "path", parameters.get("path")),
    ]


CONSTRAINTS = constraints
