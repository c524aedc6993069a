"""The mission language: RustChain's forms, our additions, references and the plan."""

from __future__ import annotations

import json

from rustchain.domain.language.step_types import StepTypeRegistry, canonical_step_type
from rustchain.domain.plans.compiler import compile_mission
from tests.unit.compile_helpers import REGISTRY, compile_text, messages

HEADER = 'version: "1.0"\nname: test\n'


def test_step_type_is_accepted_in_snake_camel_and_mapping_form() -> None:
    compilation = compile_text(
        HEADER
        + "steps:\n"
        + "  - {id: a, name: A, step_type: create_file, parameters: {path: a.txt}}\n"
        + "  - {id: b, name: B, step_type: CreateFile, parameters: {path: b.txt}}\n"
        + "  - {id: c, name: C, step_type: {type: create_file}, parameters: {path: c.txt}}\n"
        + "  - {id: d, name: D, step_type: Tool, parameters: {tool: noop}}\n"
    )

    assert compilation.plan is not None
    assert [s.step_type for s in compilation.plan.steps] == [
        "create_file",
        "create_file",
        "create_file",
        "tool",
    ]


def test_canonical_step_type_turns_camel_case_into_snake_case() -> None:
    assert canonical_step_type("RagQuery") == "rag_query"
    assert canonical_step_type("rag_query") == "rag_query"
    assert canonical_step_type("Tool") == "tool"


def test_json_and_yaml_forms_of_a_mission_give_the_same_plan_hash() -> None:
    yaml_text = HEADER + "steps:\n  - id: a\n    name: A\n    step_type: noop\n    parameters: {}\n"
    json_text = json.dumps(
        {
            "version": "1.0",
            "name": "test",
            "steps": [{"id": "a", "name": "A", "step_type": "noop", "parameters": {}}],
        },
        indent="\t",
    )

    from_yaml = compile_text(yaml_text).plan
    from_json = compile_text(json_text, "mission.json").plan

    assert from_yaml is not None and from_json is not None
    assert from_yaml.content_hash == from_json.content_hash


def test_yaml_one_point_two_keeps_yes_and_no_as_text() -> None:
    compilation = compile_text(
        HEADER + "steps:\n  - {id: a, name: A, step_type: noop, parameters: {message: no}}\n"
    )

    assert compilation.plan is not None
    assert compilation.plan.steps[0].parameters == {"message": "no"}


def test_step_name_defaults_to_its_id() -> None:
    compilation = compile_text(HEADER + "steps:\n  - {id: only, step_type: noop}\n")

    assert compilation.plan is not None
    assert compilation.plan.steps[0].name == "only"


def test_variables_declare_types_defaults_and_shorthand() -> None:
    compilation = compile_text(
        HEADER
        + "variables:\n"
        + "  count: 3\n"
        + "  verbose: false\n"
        + "  dir: {type: string, pattern: '^[a-z]+$'}\n"
        + "steps:\n  - {id: a, name: A, step_type: noop, parameters: {message: '{dir} {count}'}}\n"
    )

    assert compilation.mission is not None
    variables = compilation.mission.variables
    assert variables["count"].type == "integer" and variables["count"].default == 3
    assert variables["verbose"].type == "boolean"
    assert variables["dir"].required


def test_retry_policy_and_timeouts_fold_into_the_plan() -> None:
    compilation = compile_text(
        HEADER
        + "config: {timeout_seconds: 50}\n"
        + "steps:\n"
        + "  - id: a\n    name: A\n    step_type: noop\n"
        + "    retry: {max_attempts: 3, backoff_seconds: 2, idempotent: true}\n"
        + "  - {id: b, name: B, step_type: noop, timeout_seconds: 7, depends_on: [a]}\n"
    )

    plan = compilation.plan
    assert plan is not None
    assert plan.step("a").timeout_seconds == 50
    assert plan.step("a").retry.idempotent
    assert plan.step("b").timeout_seconds == 7
    assert plan.critical_path == ["a", "b"]
    assert plan.critical_path_seconds == 50 * 3 + 2 * 2 + 7


def test_plan_levels_group_independent_steps() -> None:
    compilation = compile_text(
        HEADER
        + "steps:\n"
        + "  - {id: fetch, name: F, step_type: noop}\n"
        + "  - {id: left, name: L, step_type: noop, depends_on: [fetch]}\n"
        + "  - {id: right, name: R, step_type: noop, depends_on: [fetch]}\n"
        + "  - {id: join, name: J, step_type: noop, depends_on: [left, right]}\n"
    )

    assert compilation.plan is not None
    assert compilation.plan.levels == [["fetch"], ["left", "right"], ["join"]]


def test_plan_hash_ignores_layout_but_not_meaning() -> None:
    base = HEADER + "steps:\n  - {id: a, name: A, step_type: noop, parameters: {message: hi}}\n"
    relaid = (
        "# a comment moves everything down\n" + HEADER + "steps:\n"
        "  - parameters:\n      message: hi\n    step_type: noop\n    name: A\n    id: a\n"
    )
    changed = base.replace("hi", "bye")

    first, second, third = (compile_text(t).plan for t in (base, relaid, changed))

    assert first is not None and second is not None and third is not None
    assert first.content_hash == second.content_hash
    assert first.content_hash != third.content_hash
    assert json.loads(first.to_json())["hash"] == first.content_hash


def test_references_to_upstream_steps_and_variables_are_accepted() -> None:
    compilation = compile_text(
        HEADER
        + "variables: {who: world}\n"
        + "steps:\n"
        + "  - {id: a, name: A, step_type: noop}\n"
        + "  - {id: b, name: B, step_type: noop, depends_on: [a]}\n"
        + "  - id: c\n    name: C\n    step_type: create_file\n    depends_on: [b]\n"
        + "    parameters:\n      path: out.txt\n"
        + "      content: '{who} {a.output} {a} {a_result} {previous_result} {b.output.status}'\n"
    )

    assert compilation.plan is not None, messages(compilation)


def test_code_in_braces_that_names_nothing_stays_literal() -> None:
    content = 'print(f"{message}") ${HOME} {{ timestamp }} {"json": 1} {e}'
    compilation = compile_text(
        HEADER
        + "steps:\n  - id: a\n    name: A\n    step_type: create_file\n"
        + f"    parameters:\n      path: x.py\n      content: '{content}'\n"
    )

    assert compilation.plan is not None, messages(compilation)
    assert compilation.plan.steps[0].parameters["content"] == content


def test_every_problem_of_a_file_is_reported_in_one_pass() -> None:
    compilation = compile_text(
        HEADER
        + "steps:\n"
        + "  - {id: a, name: A, step_type: nop}\n"
        + "  - {id: b, name: B, step_type: noop, depends_on: [zz]}\n"
        + "  - {id: c, name: C, step_type: noop, timeout_seconds: soon}\n"
    )

    assert [m.split(": error: ")[0] for m in messages(compilation)] == ["4:33", "5:52", "6:56"]


def test_unknown_metadata_keys_warn_but_keep_the_mission_valid() -> None:
    compilation = compile_text(
        HEADER + "tags: [demo]\nsteps:\n  - {id: a, name: A, step_type: noop}\n"
    )

    assert compilation.plan is not None
    assert messages(compilation) == ["3:1: warning: unknown key 'tags' in the mission is ignored"]


def test_a_refused_step_type_is_an_error_that_gives_the_reason() -> None:
    registry = StepTypeRegistry.of(REGISTRY.types.values(), {"teleport": "use 'command' instead"})
    text = HEADER + "steps:\n  - {id: a, name: A, step_type: teleport, parameters: {}}\n"

    compilation = compile_mission(text.encode(), "mission.yaml", registry)

    assert compilation.plan is None
    [message] = messages(compilation)
    assert message == "4:33: error: step type 'teleport' is not supported: use 'command' instead"


def test_process_kill_by_pid_is_refused_with_the_handle_to_use_instead() -> None:
    compilation = compile_text(
        HEADER + "steps:\n  - {id: a, name: A, step_type: process_kill, parameters: {pid: 1}}\n"
    )

    found = messages(compilation)
    assert any(
        "process_kill takes the 'handle' a process_start step of this mission returned" in m
        and "never a pid" in m
        for m in found
    ), found
