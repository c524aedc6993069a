"""The tools that `tool` and `agent` steps call: the built-in file and http steps, plus plug-ins.

A plug-in tool is registered under the `rustchain.tools` entry-point group and looks like a step
type: `name`, `summary`, `parameters` (a pydantic model) and an async `run(params, context)`.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ValidationError

from rustchain.domain.policy.checks import check_tool
from rustchain.steps import default_registry
from rustchain.steps.support.runtime import StepContext, StepRunError

ENTRY_POINT_GROUP = "rustchain.tools"
BUILT_IN_TOOLS = (
    "create_file",
    "edit_file",
    "delete_file",
    "copy_file",
    "move_file",
    "read_file",
    "list_directory",
    "file_search",
    "http",
    "parse_json",
    "parse_yaml",
    "validate_schema",
)


# RustChain's names for the same tools.
ALIASES = {"file_create": "create_file", "file_read": "read_file", "http_request": "http"}


def tool_registry() -> dict[str, Any]:
    """Every tool by name: built-in steps, RustChain's tools and aliases, then plug-ins."""
    from rustchain.steps.tools.csv_loader import TOOL as CSV_LOADER
    from rustchain.steps.tools.json_yaml_loader import TOOL as JSON_YAML_LOADER

    built_in = default_registry(include_plugins=False).types
    tools: dict[str, Any] = {name: built_in[name] for name in BUILT_IN_TOOLS}
    tools.update({t.name: t for t in (CSV_LOADER, JSON_YAML_LOADER)})
    tools.update({alias: tools[name] for alias, name in ALIASES.items()})
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        tool = entry.load()
        tools[tool.name] = tool
    return tools


async def call_tool(name: str, arguments: dict[str, Any], context: StepContext) -> Any:
    """Validate the arguments against the tool's parameters and run it."""
    context.check(check_tool, name)
    tools = tool_registry()
    tool = tools.get(name)
    if tool is None or getattr(tool, "run", None) is None:
        raise StepRunError(f"unknown tool '{name}'; the tools are: {', '.join(sorted(tools))}")
    model: type[BaseModel] = tool.parameters
    try:
        params = model.model_validate(arguments)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'parameters'}: {e['msg']}"
            for e in error.errors(include_url=False)
        )
        raise StepRunError(f"tool '{name}': {problems}") from None
    return await tool.run(params, context)


def describe_tools(names: list[str]) -> str:
    """The named tools with their parameter schemas, for an agent's instructions."""
    tools = tool_registry()
    lines = []
    for name in names:
        tool = tools.get(name)
        if tool is None:
            raise StepRunError(f"unknown tool '{name}'; the tools are: {', '.join(sorted(tools))}")
        schema = tool.parameters.model_json_schema()
        lines.append(f"- {name}: {tool.summary}; parameters: {schema.get('properties', {})}")
    return "\n".join(lines)
