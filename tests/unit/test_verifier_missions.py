"""Unsafe missions are refused with the expected rule, step and a counterexample the runtime
refuses too; safe missions (ours and every valid RustChain mission) are proven safe."""

from __future__ import annotations

from pathlib import Path

import pytest

from rustchain.domain.language.diagnostics import DiagnosticSink
from rustchain.domain.plans.verdict import Finding, VerdictStatus
from rustchain.domain.policy.checks import (
    BYTE_BOUNDS,
    check_bytes,
    check_data_flow,
    check_secret_flow,
    check_tokens,
    check_url,
    check_value,
)
from rustchain.domain.policy.model import parse_policy
from rustchain.domain.policy.network_hosts import canonical_url
from rustchain.domain.policy.obligations import parse_template
from rustchain.domain.policy.rules import Sink
from rustchain.tools import compat_report
from rustchain.verifier.data_flow import taint
from tests.paths import COMPAT, REPO
from tests.unit.compile_helpers import compile_text
from tests.unit.test_compatibility import VALID_RUSTCHAIN_MISSIONS
from tests.unit.verifier_helpers import (
    VERIFIER_DATA,
    argument_refusal,
    expectation,
    named_policy,
    plan_of,
    use_of,
    verify,
)

UNSAFE = sorted((VERIFIER_DATA / "unsafe").glob("*.yaml"))
SAFE = sorted((VERIFIER_DATA / "safe").glob("*.yaml"))
COMPAT_SAFE = [
    p
    for p in compat_report.mission_files()
    if str(p.relative_to(COMPAT)) in VALID_RUSTCHAIN_MISSIONS
]
MISSION_RULES = {
    *("mission.steps", "mission.parallelism", "mission.time", "llm.budget"),
    *("filesystem.mission_workspace", "commands.background_processes"),
}


def test_the_corpora_are_large_enough() -> None:
    assert len(UNSAFE) >= 30
    assert len(SAFE) + len(COMPAT_SAFE) >= 30
    assert len(COMPAT_SAFE) == len(VALID_RUSTCHAIN_MISSIONS)


def test_every_rule_and_every_constrained_step_type_has_an_unsafe_mission() -> None:
    rules = {expectation(p).rule for p in UNSAFE}
    step_types = set()
    for path in UNSAFE:
        found = expectation(path)
        if found.step is not None:
            step_types.add(plan_of(path).step(found.step).step_type)
    assert rules >= {
        *("command.program", "command.argument", "command.shell", "filesystem.workspace"),
        *("filesystem.denied", "filesystem.read_only", "network.url", "network.scheme"),
        *("network.host", "network.port", "llm.model", "llm.tokens", "llm.budget"),
        *("tools.allowed", "mission.time", "mission.steps", "mission.parallelism"),
        *("command.environment", "command.option", "filesystem.mission_workspace"),
        "data_flow.untrusted",
        "data_flow.secrets",
        *("commands.output", "network.response", "commands.background_processes"),
    }
    assert step_types >= {
        *("create_file", "edit_file", "delete_file", "copy_file", "move_file", "read_file"),
        *("list_directory", "file_search", "parse_json", "parse_yaml", "validate_schema"),
        *("command", "http", "llm", "agent", "chain", "tool", "process_start"),
    }


def _runtime_refuses(finding: Finding, path: Path) -> None:
    plan = plan_of(path)
    policy = named_policy(expectation(path).policy)
    if finding.rule in MISSION_RULES:
        return  # mission-wide bounds: checked by the numbers below, not by a step's runner
    assert finding.step_id is not None and finding.field is not None
    step = plan.step(finding.step_id)
    if finding.rule == "llm.tokens":
        assert check_tokens(policy, int(finding.counterexample[finding.field])) is not None
        return
    if finding.rule in BYTE_BOUNDS:
        size = int(finding.counterexample[finding.field])
        refusal = check_bytes(policy, finding.rule, finding.field, size)
        assert refusal is not None and refusal.rule == finding.rule
        return
    use = use_of(plan, finding.step_id, finding.field)
    template = parse_template(use.text, step, plan, {s.id: s for s in plan.steps})
    values = {s.name: finding.counterexample.get(s.name, "x") for s in template.symbols}
    concrete = template.substitute(values)
    if finding.rule == "data_flow.untrusted":
        # Runners carry each output's taint (the untrusted step types it came from) along.
        labels = taint(plan, policy)
        sources = {t for s in template.symbols if s.source_step for t in labels[s.source_step]}
        refusals = [check_data_flow(policy, t, use.sink) for t in sources]
        assert any(r is not None and r.rule == finding.rule for r in refusals)
        return
    if finding.rule == "data_flow.secrets":
        # The executor checks the recorded inputs, where the secret is still its reference.
        names = [s.name.removeprefix("secrets.") for s in template.symbols]
        refused = [check_secret_flow(policy, name, use.sink) for name in names]
        assert any(r is not None and r.rule == finding.rule for r in refused)
        return
    if use.command is not None:
        refusal = argument_refusal(policy, plan, step, finding)
    elif use.sink is Sink.URL:
        refusal = check_url(policy, concrete)
    else:
        refusal = check_value(policy, use.sink, concrete)
    assert refusal is not None, f"the runtime accepts the counterexample {concrete!r}"
    assert refusal.rule == finding.rule
    if finding.value is not None:
        # A numeric host is reported as the address it names.
        assert finding.value in (concrete, canonical_url(concrete))


@pytest.mark.parametrize("path", UNSAFE, ids=[p.stem for p in UNSAFE])
def test_unsafe_mission_is_refused_with_a_counterexample_the_runtime_refuses(path: Path) -> None:
    expected = expectation(path)
    verdict = verify(plan_of(path), named_policy(expected.policy))

    assert verdict.status is VerdictStatus.VIOLATION
    matching = [
        f for f in verdict.violations if f.rule == expected.rule and f.step_id == expected.step
    ]
    assert matching, [f.render() for f in verdict.violations]
    finding = matching[0]
    assert finding.counterexample
    assert finding.render().startswith(f"{path.name}:{finding.line}:{finding.column}: error: [")
    if expected.step is not None:
        assert (finding.line, finding.column) != (1, 1)
    _runtime_refuses(finding, path)


def test_mission_wide_counterexamples_exceed_the_policy() -> None:
    policy = named_policy("strict")
    steps = verify(plan_of(VERIFIER_DATA / "unsafe" / "mission_steps.yaml"), policy)
    parallel = verify(plan_of(VERIFIER_DATA / "unsafe" / "mission_parallelism.yaml"), policy)

    by_rule = {f.rule: f for f in [*steps.violations, *parallel.violations]}
    assert int(by_rule["mission.steps"].counterexample["steps"]) > policy.limits.max_steps
    assert (
        int(by_rule["mission.time"].counterexample["seconds"]) > policy.limits.max_mission_seconds
    )
    parallel_steps = int(by_rule["mission.parallelism"].counterexample["parallel_steps"])
    assert parallel_steps > policy.limits.max_parallel_steps


@pytest.mark.parametrize("path", SAFE, ids=[p.stem for p in SAFE])
def test_safe_mission_is_proven_safe(path: Path) -> None:
    verdict = verify(plan_of(path), named_policy(expectation(path).policy))

    assert verdict.status is VerdictStatus.SAFE, [f.render() for f in verdict.violations]
    assert verdict.rules_proven
    assert not verdict.violations and not verdict.undecided


@pytest.mark.parametrize("path", COMPAT_SAFE, ids=[str(p.relative_to(COMPAT)) for p in COMPAT_SAFE])
def test_valid_rustchain_mission_is_safe_under_the_default_policy(path: Path) -> None:
    plan = compat_report.compile_compat(path).plan
    assert plan is not None

    verdict = verify(plan, named_policy(None))

    assert verdict.status is VerdictStatus.SAFE, [f.render() for f in verdict.violations]


def test_the_example_missions_are_safe_under_their_policies() -> None:
    hello = verify(plan_of(REPO / "missions" / "hello.yaml"), named_policy(None))
    analysis = plan_of(REPO / "missions" / "code_analysis.yaml")
    policy_file = REPO / "missions" / "policies" / "repository-analysis.yaml"
    sink = DiagnosticSink(str(policy_file))
    repository = parse_policy(policy_file.read_bytes(), str(policy_file), sink)
    assert repository is not None, [d.render() for d in sink.sorted()]

    assert hello.safe
    assert verify(analysis, repository).safe
    refused = verify(analysis, named_policy(None))
    assert [f.rule for f in refused.violations] == ["filesystem.mission_workspace"]


def test_constraining_a_variable_turns_the_counterexample_into_a_proof() -> None:
    unsafe = VERIFIER_DATA / "unsafe" / "path_variable_create_file.yaml"
    text = unsafe.read_text()
    constrained = text.replace(
        "dir: {type: string, default: out}",
        'dir: {type: string, default: out, pattern: "[a-z]{1,20}"}',
    )
    assert constrained != text
    refused = verify(plan_of(unsafe), named_policy(None))
    plan = compile_text(constrained).plan
    assert plan is not None
    proven = verify(plan, named_policy(None))

    assert refused.violations[0].counterexample["dir"].startswith(("..", "/"))
    assert proven.safe
    assert proven.queries > 0  # proven by the solver, not by enumeration


def test_verdict_names_the_plan_and_policy_it_was_proven_against() -> None:
    plan = plan_of(VERIFIER_DATA / "safe" / "dir_pattern_path.yaml")
    default, strict = named_policy(None), named_policy("strict")

    verdict = verify(plan, default)

    assert verdict.plan_hash == plan.content_hash
    assert verdict.policy_hash == default.content_hash != strict.content_hash
    assert verify(plan, strict).policy_hash == strict.content_hash


def test_output_and_response_bounds_within_the_policy_are_proven() -> None:
    text = """\
version: "1.0"
name: output-bounds
steps:
  - {id: default, step_type: command, parameters: {command: echo}}
  - {id: small, step_type: command, parameters: {command: echo, max_output_bytes: 1000}}
  - {id: fetch, step_type: http, parameters: {url: "https://example.com", max_response_bytes: 1}}
"""
    compilation = compile_text(text, "output-bounds.yaml")
    assert compilation.plan is not None, [d.render() for d in compilation.errors]

    verdict = verify(compilation.plan, named_policy(None))

    assert verdict.status is VerdictStatus.SAFE, [f.render() for f in verdict.violations]
    assert {"commands.output", "network.response"} <= set(verdict.rules_proven)
