"""The `validate_schema` step: check data against a JSON Schema."""

from __future__ import annotations

import json
import re
from typing import Any, cast

from pydantic import BaseModel, Field, model_validator

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext, StepRunError, read_workspace_file

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
        schema = _load_json(context, params.schema_path, "schema_path")
    data = params.data
    if params.content is not None:
        data = _parse(params.content, "content")
    elif params.path is not None:
        data = _load_json(context, params.path, "path")
    problems = _problems(schema, data)
    if problems:
        raise StepRunError("the data does not match the schema: " + "; ".join(problems[:20]))
    return {"valid": True}


def _problems(schema: Any, data: Any) -> list[str]:
    """The data's violations of the schema; a schema that cannot be applied is a StepRunError."""
    if not isinstance(schema, dict | bool):
        raise StepRunError(
            f"the schema is not valid: a JSON Schema is an object or a boolean, not "
            f"{type(schema).__name__}"
        )
    # Imported when a step runs, not when a mission is compiled: `rustchain validate` needs none.
    import jsonschema
    from referencing import Registry, Resource
    from referencing.exceptions import NoSuchResource, Unresolvable

    refused: list[str] = []

    def retrieve(uri: str) -> Resource[Any]:
        # $ref resolves only inside the schema given: nothing is fetched, from anywhere.
        refused.append(uri)
        raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # an attrs class mypy misreads

    try:
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(cast(Any, schema))  # a boolean schema is one too
        registry: Registry[Any] = Registry(retrieve=retrieve)  # type: ignore[call-arg]  # attrs
        validator = validator_class(schema, registry=registry)
        return [
            f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in validator.iter_errors(data)
        ]
    except jsonschema.SchemaError as error:
        raise StepRunError(f"the schema is not valid: {error.message}") from None
    except Unresolvable as error:
        if refused:
            raise StepRunError(
                f"the schema's $ref '{error.ref}' is refused: validate_schema resolves $ref only "
                "within the schema given (no http, no file, no other retrieval)"
            ) from None
        # A JSON pointer that points nowhere is reported without its `#`.
        ref = f"#{error.ref}" if error.ref.startswith("/") else error.ref
        raise StepRunError(
            f"the schema's $ref '{ref}' does not resolve within the schema"
        ) from None
    except RecursionError:
        raise StepRunError(
            "the schema refers to itself without end ($ref loop), or the data nests too deeply"
        ) from None
    except (jsonschema.exceptions.UnknownType, re.error) as error:
        raise StepRunError(f"the schema is not valid: {_first_line(error)}") from None
    except (AttributeError, TypeError, KeyError, ValueError) as error:
        # The library assumes every subschema passed check_schema; one reached through a $ref
        # into a keyword it does not check (`{"$ref": "#/x", "x": "text"}`) is not a schema.
        raise StepRunError(
            f"the schema is not valid: a $ref or keyword leads to a value that is not a schema "
            f"({type(error).__name__}: {_first_line(error)})"
        ) from None


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _parse(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise StepRunError(f"{where} is not JSON: {error}") from None


def _load_json(context: StepContext, path: str, parameter: str) -> Any:
    data = read_workspace_file(context, path, MAX_BYTES, f"{parameter} ")
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
