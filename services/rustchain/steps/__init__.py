"""The step-type registry: one module per step type, one line per module in STEP_MODULES below.

A step module is imported when its step type is first looked up, so a command that compiles a
mission loads the step types the mission uses and no others. Plug-ins add step types through the
`rustchain.step_types` entry-point group; each entry point names an object with `name`, `summary`
and `parameters` (and optionally `constraints`), like the modules here export.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from rustchain.domain.language.step_types import StepType, StepTypeRegistry
from rustchain.steps.support.lazy_modules import LazyModuleAttributes

if TYPE_CHECKING:
    # Only a type here: the policy's rules are loaded by the step modules that declare uses.
    from rustchain.domain.policy.obligations import ConstraintGenerator

ENTRY_POINT_GROUP = "rustchain.step_types"

STEP_MODULES: dict[str, str] = {
    "create_file": "rustchain.steps.create_file",
    "edit_file": "rustchain.steps.edit_file",
    "delete_file": "rustchain.steps.delete_file",
    "copy_file": "rustchain.steps.copy_file",
    "move_file": "rustchain.steps.move_file",
    "read_file": "rustchain.steps.read_file",
    "list_directory": "rustchain.steps.list_directory",
    "file_search": "rustchain.steps.file_search",
    "command": "rustchain.steps.command",
    "http": "rustchain.steps.http",
    "noop": "rustchain.steps.noop",
    "llm": "rustchain.steps.llm",
    "tool": "rustchain.steps.tool",
    "agent": "rustchain.steps.agent",
    "chain": "rustchain.steps.chain",
    "rag_add": "rustchain.steps.rag_add",
    "rag_query": "rustchain.steps.rag_query",
    "parse_json": "rustchain.steps.parse_json",
    "parse_yaml": "rustchain.steps.parse_yaml",
    "validate_schema": "rustchain.steps.validate_schema",
    # network, login and host
    "service_health": "rustchain.steps.service_health",
    "ping_host": "rustchain.steps.ping_host",
    "websocket_connect": "rustchain.steps.websocket_connect",
    "ssh_execute": "rustchain.steps.ssh_execute",
    "ftp_upload": "rustchain.steps.ftp_upload",
    "ftp_download": "rustchain.steps.ftp_download",
    "monitor_resources": "rustchain.steps.monitor_resources",
    # data formats, git, archives and code
    "parse_xml": "rustchain.steps.parse_xml",
    "csv_process": "rustchain.steps.csv_process",
    "git_commit": "rustchain.steps.git_commit",
    "git_branch": "rustchain.steps.git_branch",
    "git_merge": "rustchain.steps.git_merge",
    "git_status": "rustchain.steps.git_status",
    "git_diff": "rustchain.steps.git_diff",
    "compress": "rustchain.steps.compress",
    "extract_functions": "rustchain.steps.extract_functions",
    "generate_docs": "rustchain.steps.generate_docs",
    "compile_code": "rustchain.steps.compile_code",
    "run_tests": "rustchain.steps.run_tests",
    "format_code": "rustchain.steps.format_code",
    "lint_code": "rustchain.steps.lint_code",
    # data services
    "sql_query": "rustchain.steps.sql_query",
    "redis_set": "rustchain.steps.redis_set",
    "redis_get": "rustchain.steps.redis_get",
    "model_inference": "rustchain.steps.model_inference",
    "db_backup": "rustchain.steps.db_backup",
    "db_migrate": "rustchain.steps.db_migrate",
    "generate_embedding": "rustchain.steps.generate_embedding",
    "similarity_search": "rustchain.steps.similarity_search",
    # background programs, owned by the executor's per-mission supervisor
    "process_start": "rustchain.steps.process_start",
    "process_kill": "rustchain.steps.process_kill",
}
"""Each built-in step type's name and the module that defines it: its `STEP_TYPE` (a
`StepDefinition` of that name) and its `CONSTRAINTS` (the verifier's constraint generator).
tests/unit/test_step_modules.py checks this table against the modules themselves."""

REFUSED: dict[str, str] = {}
"""Step types refused on purpose, each with the reason (none since process_start and process_kill
became real; the registry still reports a refused name with its reason)."""


def plugin_step_types() -> list[StepType]:
    """Step types installed by other packages through entry points."""
    plugins: list[StepType] = [entry.load() for entry in entry_points(group=ENTRY_POINT_GROUP)]
    names = [*STEP_MODULES]
    for plugin in plugins:
        if plugin.name in names:
            raise ValueError(f"step type '{plugin.name}' is registered twice")
        names.append(plugin.name)
    return plugins


def default_registry(include_plugins: bool = True) -> StepTypeRegistry:
    """Every built-in step type, plus installed plug-ins; a built-in's module loads on lookup."""
    extra = {p.name: p for p in plugin_step_types()} if include_plugins else {}
    types = LazyModuleAttributes[StepType](STEP_MODULES, "STEP_TYPE", extra)
    return StepTypeRegistry(types, REFUSED)


def constraint_generators() -> LazyModuleAttributes[ConstraintGenerator]:
    """Each step type's constraint generator, by name: built-ins (loaded on lookup), then
    plug-ins that have one."""
    extra: dict[str, ConstraintGenerator] = {}
    for step_type in plugin_step_types():
        generator = getattr(step_type, "constraints", None)
        if callable(generator):
            extra[step_type.name] = generator
    generators: LazyModuleAttributes[ConstraintGenerator]
    generators = LazyModuleAttributes(STEP_MODULES, "CONSTRAINTS", extra)
    return generators
