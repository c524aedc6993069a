"""Program models: options that run programs are refused, and file names given to options
(attached, split, long, abbreviated, in clusters) are workspace paths, for the verifier and the
runtime alike."""

from __future__ import annotations

import pytest

from rustchain.domain.language.diagnostics import DiagnosticSink
from rustchain.domain.plans.verdict import VerdictStatus
from rustchain.domain.policy.checks import check_command, check_environment
from rustchain.domain.policy.model import Policy, parse_policy
from rustchain.domain.policy.program_models import MODELS
from tests.unit.compile_helpers import compile_text
from tests.unit.verifier_helpers import named_policy, verify

DEFAULT = Policy()
STRICT = named_policy("strict")
BARE = named_policy("bare_arguments")

ATTACKS = [
    (DEFAULT, "find", [".", "-maxdepth", "0", "-exec", "sh", "-c", "cat /x; id", ";"], "option"),
    (DEFAULT, "find", [".", "-execdir", "id", "+"], "command.option"),
    (DEFAULT, "find", [".", "-name", "x", "-delete"], "command.option"),
    (DEFAULT, "sort", ["-S", "1K", "--compress-program=sh", "in.txt"], "command.option"),
    (DEFAULT, "sort", ["--compress", "sh", "in.txt"], "command.option"),
    (DEFAULT, "sort", ["-o/abs/file", "in.txt"], "filesystem.workspace"),
    (DEFAULT, "sort", ["-o../x", "in.txt"], "filesystem.workspace"),
    (DEFAULT, "sort", ["-uo/x", "in.txt"], "filesystem.workspace"),
    (DEFAULT, "sort", ["-T/tmp", "in.txt"], "filesystem.workspace"),
    (DEFAULT, "cp", ["-t/abs", "a"], "filesystem.workspace"),
    (DEFAULT, "date", ["-f/abs/file"], "filesystem.workspace"),
    (DEFAULT, "date", ["-f", ".env"], "filesystem.denied"),
    (DEFAULT, "date", ["-f.env"], "filesystem.denied"),
    (DEFAULT, "date", ["--ref=.git/config"], "filesystem.denied"),
    (DEFAULT, "grep", ["-f", "/etc/passwd", "x"], "command.argument"),
    (BARE, "grep", ["-f", "/etc/passwd", "x"], "filesystem.workspace"),
    (BARE, "sort", ["--output=/x", "in.txt"], "filesystem.workspace"),
    (BARE, "sort", ["--out", "/x", "in.txt"], "filesystem.workspace"),
    (BARE, "sort", ["--out=../x", "in.txt"], "filesystem.workspace"),
    (DEFAULT, "cat", [".git/hooks/pre-commit"], "filesystem.denied"),
    (DEFAULT, "cp", ["run.sh", ".git/hooks/x"], "filesystem.denied"),
    (DEFAULT, "cat", ["sub/.env"], "filesystem.denied"),
    (DEFAULT, "ls", [".git"], "filesystem.denied"),
    (DEFAULT, "grep", ["-rn", "KEY", "."], "command.option"),
    (DEFAULT, "grep", ["--recursive", "KEY"], "command.option"),
    (DEFAULT, "diff", ["-r", "a", "b"], "command.option"),
    (DEFAULT, "sort", ["--files0-from=names"], "command.option"),
    (STRICT, "sort", ["in.txt", "-o", "src/x"], "filesystem.read_only"),
    (STRICT, "sort", ["in.txt", "--out", "src/x"], "filesystem.read_only"),
    (STRICT, "cp", ["a.txt", "src", "-v"], "filesystem.read_only"),
    (STRICT, "cp", ["-tsrc", "a.txt"], "filesystem.read_only"),
    (STRICT, "uniq", ["in.txt", "src/out"], "filesystem.read_only"),
    (STRICT, "mv", ["src/a", "b"], "filesystem.read_only"),
    (STRICT, "touch", ["docs/x.md"], "filesystem.read_only"),
    (STRICT, "find", [".", "-fprint", "src/list"], "filesystem.read_only"),
]
SAFE = [
    (DEFAULT, "sort", ["-u", "in.txt"]),
    (DEFAULT, "sort", ["-uo", "out.txt", "in.txt"]),
    (DEFAULT, "cp", ["a", "b"]),
    (DEFAULT, "grep", ["-n", "foo", "file.txt"]),
    (DEFAULT, "find", [".", "-name", "*.py"]),
    (DEFAULT, "find", ["src", "-type", "f", "-name", "*.py", "-o", "-name", "*.md"]),
    (DEFAULT, "mkdir", ["-p", "a/b", "c"]),
    (DEFAULT, "date", ["+%Y-%m-%d"]),
    (DEFAULT, "echo", ["-o/anything", "/etc/passwd"]),
    (STRICT, "cp", ["src/a", "b"]),
    (STRICT, "uniq", ["src/in", "out"]),
    (STRICT, "sort", ["-o", "out", "src/in"]),
]


@pytest.mark.parametrize(("policy", "program", "args", "rule"), ATTACKS)
def test_the_runtime_refuses_options_and_paths_that_reach_outside(
    policy: Policy, program: str, args: list[str], rule: str
) -> None:
    refusal = check_command(policy, program, args)

    assert refusal is not None
    assert refusal.rule == (rule if "." in rule else f"command.{rule}")


@pytest.mark.parametrize(("policy", "program", "args"), SAFE)
def test_the_runtime_accepts_options_that_stay_in_the_workspace(
    policy: Policy, program: str, args: list[str]
) -> None:
    assert check_command(policy, program, args) is None


def _mission(program: str, args: list[str], variables: str = "") -> str:
    quoted = ", ".join(f"'{a}'" for a in args)
    return (
        f'version: "1.0"\nname: m\n{variables}steps:\n'
        f"  - id: run\n    step_type: command\n"
        f"    parameters: {{command: {program}, args: [{quoted}]}}\n"
    )


@pytest.mark.parametrize(("policy", "program", "args", "rule"), ATTACKS)
def test_the_verifier_refuses_the_same_commands_naming_step_and_argument(
    policy: Policy, program: str, args: list[str], rule: str
) -> None:
    plan = compile_text(_mission(program, args)).plan
    assert plan is not None

    verdict = verify(plan, policy)

    assert verdict.status is VerdictStatus.VIOLATION
    finding = verdict.violations[0]
    assert finding.rule == (rule if "." in rule else f"command.{rule}")
    assert finding.step_id == "run" and (finding.field or "").startswith("args[")


@pytest.mark.parametrize(("policy", "program", "args"), SAFE)
def test_the_verifier_proves_commands_that_stay_in_the_workspace(
    policy: Policy, program: str, args: list[str]
) -> None:
    plan = compile_text(_mission(program, args)).plan
    assert plan is not None

    assert verify(plan, policy).safe


def test_a_variable_that_may_become_an_option_has_that_option_as_counterexample() -> None:
    variables = "variables:\n  order: {type: string, pattern: '[a-z-][a-z/]{0,11}'}\n"
    plan = compile_text(_mission("sort", ["{order}", "in.txt"], variables)).plan
    assert plan is not None

    verdict = verify(plan, DEFAULT)

    assert not verdict.safe
    value = verdict.violations[0].counterexample["order"]
    assert value.startswith("-") and "/" in value
    refusal = check_command(DEFAULT, "sort", [value, "in.txt"])
    assert refusal is not None and refusal.rule == verdict.violations[0].rule


def test_a_variable_after_an_output_option_is_a_path_written() -> None:
    variables = "variables:\n  out: {type: string, pattern: '[a-z]{1,8}'}\n"
    plan = compile_text(_mission("sort", ["-o", "{out}", "in.txt"], variables)).plan
    assert plan is not None

    verdict = verify(plan, STRICT)

    assert [f.rule for f in verdict.violations] == ["filesystem.read_only"]
    assert verdict.violations[0].counterexample == {"out": "src"}


def test_options_in_the_command_text_are_judged_like_arguments() -> None:
    refused = check_command(DEFAULT, "find . -maxdepth 0 -exec id ;")
    plan = compile_text(_mission("'cat .env'", [])).plan
    assert plan is not None

    assert refused is not None and refused.rule == "command.option"
    assert [f.rule for f in verify(plan, DEFAULT).violations] == ["filesystem.denied"]


def test_every_program_of_the_default_policy_has_a_model() -> None:
    assert set(DEFAULT.commands.allowed_programs) <= set(MODELS)


def _parse(text: str) -> tuple[Policy | None, list[str]]:
    sink = DiagnosticSink("policy.yaml")
    policy = parse_policy(text.encode(), "policy.yaml", sink)
    return policy, [d.render() for d in sink.sorted()]


def test_a_program_without_a_model_needs_the_unmodelled_programs_line() -> None:
    refused, errors = _parse("commands:\n  allowed_programs: [cat, python3, 'py*']\n")
    allowed, none = _parse(
        "commands:\n  allowed_programs: [cat, python3, 'py*']\n  unmodelled_programs: ['py*']\n"
    )
    wildcard, more = _parse(
        "commands:\n  allowed_programs: ['py*']\n  unmodelled_programs: [python3]\n"
    )

    assert refused is None and errors[0].startswith("policy.yaml:2:21: error: ")
    assert "'python3', 'py*'" in errors[0] and "unmodelled_programs" in errors[0]
    assert allowed is not None and none == []
    assert wildcard is None and "'py*'" in more[0]


def test_an_unmodelled_program_keeps_argument_patterns_and_denied_paths() -> None:
    policy = Policy.model_validate(
        {"commands": {"allowed_programs": ["python3"], "unmodelled_programs": ["python3"]}}
    )

    assert check_command(policy, "python3", ["-o/x", "run.py"]) is None
    refused = check_command(policy, "python3", ["sub/.env"])
    assert refused is not None and refused.rule == "filesystem.denied"


@pytest.mark.parametrize(
    "name",
    ["GCONV_PATH", "LOCPATH", "TMPDIR", "GLIBC_TUNABLES", "BASH_FUNC_x%%", "LD_PRELOAD", "X"],
)
def test_environment_names_outside_the_allowlist_are_refused(name: str) -> None:
    refusal = check_environment(DEFAULT, name)
    everything = Policy.model_validate({"commands": {"allowed_environment": ["*"]}})

    assert refusal is not None and refusal.rule == "command.environment"
    if name != "X":
        assert check_environment(everything, name) is not None
    assert check_environment(DEFAULT, "LC_ALL") is None


def test_a_program_from_an_enumeration_is_checked_as_each_program() -> None:
    variables = "variables:\n  tool: {type: string, enum: [cat, sort]}\n"
    plan = compile_text(_mission("'{tool}'", ["-o../x"], variables)).plan
    assert plan is not None

    verdict = verify(plan, DEFAULT)

    assert [f.rule for f in verdict.violations] == ["filesystem.workspace"]
    assert verdict.violations[0].counterexample["tool"] == "sort"
    assert check_command(DEFAULT, "cat", ["-o../x"]) is None


def test_the_programs_that_only_print_are_the_default_text_only_ones() -> None:
    printing = {name for name, model in MODELS.items() if model.prints_only}

    assert printing == set(DEFAULT.commands.text_only_programs)
