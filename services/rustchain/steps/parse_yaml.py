"""The `parse_yaml` step: parse YAML text (or a workspace file) into structured output."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from rustchain.domain.language.diagnostics import DiagnosticSink
from rustchain.domain.language.yaml_reader import read_source
from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.workspace_files import source_text


class ParseYamlParameters(BaseModel):
    """The text to parse, or the path of a file holding it."""

    model_config = PARAMETERS
    content: str | None = None
    path: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ParseYamlParameters:
        if (self.content is None) == (self.path is None):
            raise ValueError("a parse_yaml step needs exactly one of 'content' or 'path'")
        return self


MAX_TEXT = 10 * 1024 * 1024


async def parse_yaml(params: ParseYamlParameters, context: StepContext) -> Any:
    """The parsed value of the text or of the workspace file."""
    text = source_text(context, params.content, params.path, MAX_TEXT)
    # The mission reader's bounds (depth, alias expansion) protect the executor from hostile YAML.
    sink = DiagnosticSink(params.path or "content")
    document = read_source(text.encode("utf-8"), sink.file, sink)
    if document is None:
        first = sink.sorted()[0]
        raise StepRunError(f"invalid YAML at {first.render()}")
    return document.root.to_plain()


STEP_TYPE = StepDefinition("parse_yaml", "Parse YAML text", ParseYamlParameters, run=parse_yaml)


def constraints(step: PlannedStep) -> list[Obligation]:
    """A file parsed must stay in the workspace and outside denied paths."""
    return text_uses(Sink.PATH_READ, "path", step.parameters.get("path"))


CONSTRAINTS = constraints
