"""The step-type registry: one module per step type, one line per module below.

Plug-ins add step types through the `rustchain.step_types` entry-point group; each entry point
names an object with `name`, `summary` and `parameters`, like the modules here export.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from rustchain.domain.language.step_types import StepType, StepTypeRegistry
from rustchain.domain.policy.obligations import ConstraintGenerator
from rustchain.steps import (
    agent,
    chain,
    command,
    compile_code,
    compress,
    copy_file,
    create_file,
    csv_process,
    db_backup,
    db_migrate,
    delete_file,
    edit_file,
    extract_functions,
    file_search,
    format_code,
    generate_docs,
    generate_embedding,
    git_branch,
    git_commit,
    git_diff,
    git_merge,
    git_status,
    http,
    lint_code,
    list_directory,
    llm,
    model_inference,
    move_file,
    noop,
    parse_json,
    parse_xml,
    parse_yaml,
    process_kill,
    process_start,
    rag_add,
    rag_query,
    read_file,
    redis_get,
    redis_set,
    run_tests,
    similarity_search,
    sql_query,
    tool,
    validate_schema,
)
from rustchain.steps.remote_step_types import MODULES as REMOTE_MODULES

ENTRY_POINT_GROUP = "rustchain.step_types"

BUILT_IN: tuple[StepType, ...] = (
    create_file.STEP_TYPE,
    edit_file.STEP_TYPE,
    delete_file.STEP_TYPE,
    copy_file.STEP_TYPE,
    move_file.STEP_TYPE,
    read_file.STEP_TYPE,
    list_directory.STEP_TYPE,
    file_search.STEP_TYPE,
    command.STEP_TYPE,
    http.STEP_TYPE,
    noop.STEP_TYPE,
    llm.STEP_TYPE,
    tool.STEP_TYPE,
    agent.STEP_TYPE,
    chain.STEP_TYPE,
    rag_add.STEP_TYPE,
    rag_query.STEP_TYPE,
    parse_json.STEP_TYPE,
    parse_yaml.STEP_TYPE,
    validate_schema.STEP_TYPE,
    *(m.STEP_TYPE for m in REMOTE_MODULES),
    parse_xml.STEP_TYPE,
    csv_process.STEP_TYPE,
    git_commit.STEP_TYPE,
    git_branch.STEP_TYPE,
    git_merge.STEP_TYPE,
    git_status.STEP_TYPE,
    git_diff.STEP_TYPE,
    compress.STEP_TYPE,
    extract_functions.STEP_TYPE,
    generate_docs.STEP_TYPE,
    compile_code.STEP_TYPE,
    run_tests.STEP_TYPE,
    format_code.STEP_TYPE,
    lint_code.STEP_TYPE,
    # stepsb: data services
    sql_query.STEP_TYPE,
    redis_set.STEP_TYPE,
    redis_get.STEP_TYPE,
    model_inference.STEP_TYPE,
    db_backup.STEP_TYPE,
    db_migrate.STEP_TYPE,
    generate_embedding.STEP_TYPE,
    similarity_search.STEP_TYPE,
    # procs: background programs, owned by the executor's per-mission supervisor
    process_start.STEP_TYPE,
    process_kill.STEP_TYPE,
)

# Step types refused on purpose, each with the reason (none since process_start and process_kill
# became real; the registry still reports a refused name with its reason).
REFUSED: dict[str, str] = {}


def plugin_step_types() -> list[StepType]:
    """Step types installed by other packages through entry points."""
    return [entry.load() for entry in entry_points(group=ENTRY_POINT_GROUP)]


def default_registry(include_plugins: bool = True) -> StepTypeRegistry:
    """Every built-in step type, plus installed plug-ins."""
    extra = plugin_step_types() if include_plugins else []
    return StepTypeRegistry.of([*BUILT_IN, *extra], REFUSED)


def constraint_generators() -> dict[str, ConstraintGenerator]:
    """Each step type's constraint generator, by name: built-ins, then plug-ins that have one."""
    modules = (
        *(agent, chain, command, copy_file, create_file, delete_file, edit_file, file_search),
        *(http, list_directory, llm, move_file, noop, parse_json, parse_yaml, rag_add),
        *(rag_query, read_file, tool, validate_schema),
        *REMOTE_MODULES,
        *(parse_xml, csv_process, git_commit, git_branch, git_merge, git_status, git_diff),
        *(compress, extract_functions, generate_docs),
        *(compile_code, run_tests, format_code, lint_code),
        # stepsb: data services
        *(sql_query, redis_set, redis_get, model_inference, db_backup, db_migrate),
        *(generate_embedding, similarity_search),
        *(process_start, process_kill),
    )
    generators: dict[str, ConstraintGenerator] = {m.STEP_TYPE.name: m.CONSTRAINTS for m in modules}
    for step_type in plugin_step_types():
        generator = getattr(step_type, "constraints", None)
        if callable(generator):
            generators[step_type.name] = generator
    return generators
