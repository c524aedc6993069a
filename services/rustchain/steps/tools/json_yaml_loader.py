"""The `json_yaml_loader` tool (RustChain's): read a JSON or YAML file of the workspace."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from rustchain.domain.language.diagnostics import DiagnosticSink
from rustchain.domain.language.yaml_reader import read_source
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext, StepRunError, read_workspace_file

MAX_BYTES = 10 * 1024 * 1024


class JsonYamlLoaderParameters(BaseModel):
    """The file, and its format (by default, from its name)."""

    model_config = PARAMETERS
    file_path: Annotated[str, Field(min_length=1)]
    format: Literal["auto", "json", "yaml"] = "auto"


async def json_yaml_loader(params: JsonYamlLoaderParameters, context: StepContext) -> Any:
    """The parsed content of the file."""
    data = read_workspace_file(context, params.file_path, MAX_BYTES, "file_path ")
    is_json = params.format == "json" or (
        params.format == "auto" and params.file_path.lower().endswith(".json")
    )
    if is_json:
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as error:
            raise StepRunError(f"'{params.file_path}' is not valid JSON: {error}") from None
    sink = DiagnosticSink(params.file_path)
    document = read_source(data, params.file_path, sink)
    if document is None:
        raise StepRunError(f"invalid YAML at {sink.sorted()[0].render()}")
    return document.root.to_plain()


TOOL = StepDefinition(
    "json_yaml_loader",
    "Read a JSON or YAML file",
    JsonYamlLoaderParameters,
    run=json_yaml_loader,
)
