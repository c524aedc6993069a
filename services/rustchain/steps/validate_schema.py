"""The `validate_schema` step: check data against a JSON Schema."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from pydantic import BaseModel, Field, model_validator

from rustchain.domain.plan import PlannedStep
from rustchain.domain.policy_obligations import Obligation, text_uses
from rustchain.domain.policy_rules import Sink
from rustchain.steps.definition import PARAMETERS, StepDefinition
from rustchain.steps.runtime import StepContext, StepRunError, read_workspace_file

MAX_BYTES = 10 * 1024 * 1024


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


async def validate_schema(params: ValidateSchemaParameters, context: StepContext) -> dict[str, Any]:
    """Check the data against the schema; every violation is listed in the error."""
    schema: Any = params.schema_
    if params.schema_path is not None:
        schema = _load_json(context, params.schema_path)
    data = params.data
    if params.content is not None:
        data = _parse(params.content, "content")
    elif params.path is not None:
        data = _load_json(context, params.path)
    try:
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as error:
        raise StepRunError(f"the schema is not valid: {error.message}") from None
    problems = [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in validator_class(schema).iter_errors(data)
    ]
    if problems:
        raise StepRunError("the data does not match the schema: " + "; ".join(problems[:20]))
    return {"valid": True}


def _parse(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise StepRunError(f"{where} is not JSON: {error}") from None


def _load_json(context: StepContext, path: str) -> Any:
    data = read_workspace_file(context, path, MAX_BYTES)
    return _parse(data.decode("utf-8", errors="replace"), f"'{path}'")


STEP_TYPE = StepDefinition(
    "validate_schema",
    "Check data against a JSON Schema",
    ValidateSchemaParameters,
    run=validate_schema,
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The schema and data files read must stay in the workspace, outside denied paths."""
    parameters = step.parameters
    return [
        *text_uses(Sink.PATH_READ, "schema_path", parameters.get("schema_path")),
        *text_uses(Sink.PATH_READ, "path", parameters.get("path")),
    ]


CONSTRAINTS = constraints
