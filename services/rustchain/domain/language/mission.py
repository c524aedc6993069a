"""The mission model: RustChain's format exactly, plus our optional additions."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rustchain.domain.language.step_types import canonical_step_type

STEP_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$"
VARIABLE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
DEFAULT_STEP_TIMEOUT_SECONDS = 300
MAX_TIMEOUT_SECONDS = 7 * 86_400
"""A week: a longer timeout is a mistake, and an absurd one would overflow the loop's timer."""

# Strict so that `timeout_seconds: "30"` is an error as it is in RustChain (serde), not a guess;
# unknown keys are ignored here and reported by the loader, with positions and suggestions.
_MODEL = ConfigDict(strict=True, extra="ignore", frozen=True)

ScalarValue = str | int | float | bool


class RetryPolicy(BaseModel):
    """How often a failed step is tried again, and whether a retry is safe after a crash."""

    model_config = _MODEL
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 1
    backoff_seconds: Annotated[float, Field(ge=0, le=86_400)] = 1.0
    idempotent: bool = False


class MissionConfig(BaseModel):
    """Mission-wide execution settings (RustChain's `config`)."""

    model_config = _MODEL
    max_parallel_steps: Annotated[int, Field(ge=1, le=10_000)] | None = None
    timeout_seconds: Annotated[int, Field(ge=1, le=MAX_TIMEOUT_SECONDS)] | None = None
    fail_fast: bool | None = None
    workspace: Annotated[str, Field(min_length=1)] | None = None


VariableType = Literal["string", "integer", "number", "boolean"]
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def value_has_type(value: object, variable_type: VariableType) -> bool:
    """Whether a value is of a variable type (booleans are not numbers)."""
    if isinstance(value, bool) and variable_type != "boolean":
        return False
    return isinstance(value, _PYTHON_TYPES[variable_type])


class VariableSpec(BaseModel):
    """A typed mission input, set with `--var name=value` or taken from its default."""

    model_config = _MODEL
    type: VariableType = "string"
    default: ScalarValue | None = None
    description: str | None = None
    enum: list[ScalarValue] | None = None
    pattern: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        """`name: value` declares a variable of the value's type with that default."""
        if isinstance(data, bool):
            return {"type": "boolean", "default": data}
        if isinstance(data, int):
            return {"type": "integer", "default": data}
        if isinstance(data, float):
            return {"type": "number", "default": data}
        if isinstance(data, str):
            return {"type": "string", "default": data}
        return data

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"'pattern' is not a valid regular expression: {error}") from None
        return pattern

    @field_validator("default", "enum")
    @classmethod
    def _values_fit_type(cls, value: Any, info: ValidationInfo) -> Any:
        declared = info.data.get("type")
        values = value if isinstance(value, list) else [value]
        for item in values:
            if declared is not None and item is not None and not value_has_type(item, declared):
                raise ValueError(f"'{info.field_name}' value {item!r} is not of type {declared}")
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern_for_strings(cls, pattern: str | None, info: ValidationInfo) -> str | None:
        if pattern is not None and info.data.get("type", "string") != "string":
            raise ValueError("'pattern' applies only to variables of type string")
        return pattern

    @property
    def required(self) -> bool:
        """A variable without a default must be set when the mission is submitted."""
        return self.default is None


def _normalise_step_type(value: Any) -> Any:
    if isinstance(value, dict):
        if "type" not in value:
            raise ValueError("a step_type written as a mapping needs a 'type' key")
        value = value["type"]
    if isinstance(value, str):
        return canonical_step_type(value)
    return value


class MissionStep(BaseModel):
    """One step of a mission: what to do, with which parameters, after which steps."""

    model_config = _MODEL
    id: Annotated[str, Field(pattern=STEP_ID_PATTERN)]
    # RustChain's struct requires a name, yet its own `mission create` templates omit it;
    # defaulting to the id keeps those missions loading and loses nothing.
    name: Annotated[str, Field(min_length=1)] | None = None
    step_type: str
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    timeout_seconds: Annotated[int, Field(ge=1, le=MAX_TIMEOUT_SECONDS)] | None = None
    continue_on_error: bool = False
    retry: RetryPolicy | None = None
    outputs: dict[str, str] = Field(default_factory=dict)

    @field_validator("step_type", mode="before")
    @classmethod
    def _step_type_form(cls, value: Any) -> Any:
        return _normalise_step_type(value)

    @field_validator("depends_on", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("parameters", mode="before")
    @classmethod
    def _null_parameters(cls, value: Any) -> Any:
        return {} if value is None else value

    @property
    def title(self) -> str:
        """The step's name, or its id when it has none."""
        return self.name or self.id

    @property
    def attempts(self) -> int:
        """How many times the step may run in all."""
        return self.retry.max_attempts if self.retry else 1


class MissionHeader(BaseModel):
    """Everything of a mission but its steps, validated on its own so step errors do not hide it."""

    model_config = _MODEL
    version: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    description: str | None = None
    config: MissionConfig | None = None
    variables: dict[Annotated[str, Field(pattern=VARIABLE_NAME_PATTERN)], VariableSpec] = Field(
        default_factory=dict
    )
    outputs: dict[str, str] = Field(default_factory=dict)


class Mission(MissionHeader):
    """A whole mission as written in its file."""

    steps: list[MissionStep]

    @property
    def settings(self) -> MissionConfig:
        """The mission's config, with defaults when it has none."""
        return self.config or MissionConfig()

    def step_timeout(self, step: MissionStep) -> int:
        """The time limit of one attempt of a step."""
        if step.timeout_seconds is not None:
            return step.timeout_seconds
        return self.settings.timeout_seconds or DEFAULT_STEP_TIMEOUT_SECONDS
