"""The JSON Schema of the mission format, so editors can complete and check missions."""

from __future__ import annotations

from typing import Any

from rustchain.domain.language.mission import Mission
from rustchain.domain.language.step_types import StepTypeRegistry

SCHEMA_ID = "https://rustchain.dev/schemas/mission/v1.json"


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def mission_json_schema(registry: StepTypeRegistry) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) for mission files, with each step type's parameters."""
    schema = Mission.model_json_schema(mode="validation")
    definitions: dict[str, Any] = schema.setdefault("$defs", {})
    written_names = sorted({*registry.names, *(_camel(n) for n in registry.names)})
    step = definitions["MissionStep"]
    step["properties"]["step_type"] = {
        "description": "What the step does; snake_case, CamelCase or {type: ...}",
        "anyOf": [
            {"enum": written_names},
            {
                "type": "object",
                "properties": {"type": {"enum": written_names}},
                "required": ["type"],
            },
        ],
    }
    branches = []
    for name in registry.names:
        params = registry.types[name].parameters.model_json_schema(
            mode="validation", ref_template="#/$defs/{model}"
        )
        definitions.update(params.pop("$defs", {}))
        title = f"{_camel(name)}StepParameters"
        definitions[title] = params
        accepted = [name, _camel(name)]
        branches.append(
            {
                "if": {
                    "properties": {
                        "step_type": {
                            "anyOf": [
                                {"enum": accepted},
                                {"properties": {"type": {"enum": accepted}}, "required": ["type"]},
                            ]
                        }
                    },
                    "required": ["step_type"],
                },
                "then": {"properties": {"parameters": {"$ref": f"#/$defs/{title}"}}},
            }
        )
    step["allOf"] = branches
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "RustChain mission",
        **schema,
    }
