"""How missions written for RustChain load: text where text is expected, the dependencies their
references imply, and parameters that only fail when the step runs."""

from __future__ import annotations

from rustchain.domain.plans.compiler import Compilation, compile_mission
from rustchain.domain.plans.verdict import VerdictStatus
from rustchain.steps import default_registry
from tests.unit.verifier_helpers import named_policy, verify


def _compile(text: str, file: str = "m.yaml") -> Compilation:
    return compile_mission(text.encode(), file, default_registry())


def _mission(steps: str) -> str:
    return f'version: "1.0"\nname: m\nsteps:\n{steps}'


def test_plain_scalars_read_as_the_text_written_where_text_is_expected() -> None:
    compilation = _compile(
        "version: 1.0\nname: 2024\nsteps:\n"
        "  - {id: a, name: 7, step_type: create_file, parameters: {path: 10, content: 1.50}}\n"
    )

    assert compilation.plan is not None, [d.render() for d in compilation.diagnostics]
    assert compilation.plan.mission_version == "1.0"
    assert compilation.plan.mission_name == "2024"
    step = compilation.plan.steps[0]
    assert step.name == "7"
    assert step.parameters == {"path": "10", "content": "1.50"}


def test_json_numbers_stay_numbers_where_text_is_expected() -> None:
    compilation = _compile(
        '{"version": 1.0, "name": "m", "steps": [{"id": "a", "name": "a", '
        '"step_type": "noop", "parameters": {}}]}',
        "m.json",
    )

    assert compilation.plan is None
    assert "'version' expects text, found the number 1.0" in compilation.errors[0].message


def test_a_reference_adds_the_dependency_it_implies_with_a_warning() -> None:
    compilation = _compile(
        _mission(
            "  - {id: a, name: a, step_type: noop, parameters: {}}\n"
            "  - {id: b, name: b, step_type: noop, parameters: {}}\n"
            "  - {id: c, name: c, step_type: create_file, depends_on: [b],"
            " parameters: {path: x, content: '{a}'}}\n"
        )
    )

    assert compilation.plan is not None
    assert compilation.plan.step("c").depends_on == ["b", "a"]
    assert [d.message for d in compilation.diagnostics] == [
        "step 'c' uses {a}, but 'a' is not in its depends_on: 'c' runs after 'a' "
        "(list it in depends_on to say so)"
    ]


def test_an_implied_dependency_that_closes_a_cycle_is_an_error_naming_it() -> None:
    compilation = _compile(
        _mission(
            "  - {id: a, name: a, step_type: create_file, parameters: {path: x, content: '{c}'}}\n"
            "  - {id: b, name: b, step_type: noop, depends_on: [a], parameters: {}}\n"
            "  - {id: c, name: c, step_type: noop, depends_on: [b], parameters: {}}\n"
        )
    )

    assert compilation.plan is None
    assert [d.message for d in compilation.errors] == [
        "step 'a' uses {c}, so it must run after 'c', but that would make a dependency cycle: "
        "a -> c -> b -> a (each step depends on the next)"
    ]


def test_previous_result_without_a_dependency_reads_the_step_written_before() -> None:
    compilation = _compile(
        _mission(
            "  - {id: a, name: a, step_type: noop, parameters: {}}\n"
            "  - {id: b, name: b, step_type: noop, parameters: {}}\n"
            "  - {id: c, name: c, step_type: create_file,"
            " parameters: {path: x, content: '{previous_result}'}}\n"
        )
    )

    assert compilation.plan is not None
    assert compilation.plan.step("c").depends_on == ["b"]
    assert compilation.diagnostics[0].severity.value == "warning"


def test_previous_result_of_several_dependencies_puts_the_one_it_reads_first() -> None:
    compilation = _compile(
        _mission(
            "  - {id: a, name: a, step_type: noop, parameters: {}}\n"
            "  - {id: b, name: b, step_type: noop, parameters: {}}\n"
            "  - {id: c, name: c, step_type: create_file, depends_on: [a, b],"
            " parameters: {path: x, content: '{previous_result}'}}\n"
        )
    )

    assert compilation.plan is not None
    assert compilation.plan.step("c").depends_on == ["b", "a"]


def test_previous_result_in_the_first_step_is_an_error() -> None:
    compilation = _compile(
        _mission(
            "  - {id: a, name: a, step_type: create_file,"
            " parameters: {path: x, content: '{previous_result}'}}\n"
        )
    )

    assert compilation.plan is None
    assert "it is the first step" in compilation.errors[0].message


def test_unrunnable_parameters_load_with_a_warning_and_stay_as_written() -> None:
    compilation = _compile(
        _mission(
            "  - {id: a, name: a, step_type: tool, continue_on_error: true,"
            " parameters: {tool_name: file_reader, path: x}}\n"
        )
    )

    assert compilation.plan is not None
    assert compilation.plan.step("a").parameters == {"tool_name": "file_reader", "path": "x"}
    assert {d.severity.value for d in compilation.diagnostics} == {"warning"}
    assert any("this step fails when it runs" in d.message for d in compilation.diagnostics)


def test_wrongly_typed_parameters_are_not_proven_and_do_not_crash_the_verifier() -> None:
    compilation = _compile(
        _mission("  - {id: a, name: a, step_type: command, parameters: {command: ls, args: 5}}\n")
    )
    assert compilation.plan is not None

    verdict = verify(compilation.plan, named_policy(None))

    assert verdict.status is VerdictStatus.UNKNOWN
    assert [(f.rule, f.step_id) for f in verdict.undecided] == [("verifier.coverage", "a")]


_NESTED_CHAIN = """version: "1.0"
name: nested
steps:
  - {id: start, name: Start, step_type: noop, parameters: {}}
  - id: pipeline
    name: Pipeline
    step_type: chain
    depends_on: [start]
    timeout_seconds: 30
    parameters:
      steps:
        - step_name: first
          step_type: create_file
          parameters: {path: a.txt, content: A}
        - step_name: second
          step_type: chain
          parameters:
            steps:
              - {step_name: inner, step_type: noop, parameters: {}}
  - {id: after, name: After, step_type: noop, depends_on: [pipeline], parameters: {}}
"""


def test_a_nested_chain_becomes_its_sub_steps_in_order_then_a_noop() -> None:
    compilation = _compile(_NESTED_CHAIN)

    assert compilation.plan is not None, [d.render() for d in compilation.diagnostics]
    steps = [(s.id, s.step_type, s.depends_on) for s in compilation.plan.steps]
    assert steps == [
        ("start", "noop", []),
        ("first", "create_file", ["start"]),
        ("inner", "noop", ["first"]),
        ("second", "noop", ["inner"]),
        ("pipeline", "noop", ["second"]),
        ("after", "noop", ["pipeline"]),
    ]
    assert compilation.plan.step("first").timeout_seconds == 30
    assert compilation.plan.step("first").parameters == {"path": "a.txt", "content": "A"}


def test_a_nested_chain_sub_step_is_checked_where_it_is_written() -> None:
    text = _NESTED_CHAIN.replace("step_type: create_file", "step_type: create_fiel")

    compilation = _compile(text)

    assert compilation.plan is None
    assert [(d.position.line, d.message) for d in compilation.errors] == [
        (13, "unknown step type 'create_fiel'; did you mean 'create_file'?")
    ]


def test_a_nested_chain_sub_step_without_step_name_is_an_error() -> None:
    text = _NESTED_CHAIN.replace("- step_name: first", "- name: first")

    compilation = _compile(text)

    assert compilation.plan is None
    assert "expected a chain sub-step" in compilation.errors[0].message
    assert compilation.errors[0].position.line == 12
