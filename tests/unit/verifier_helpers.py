"""Verifying mission files of tests/data/verifier in tests."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from rustchain.domain.language.diagnostics import DiagnosticSink
from rustchain.domain.plans.plan import Plan, PlannedStep
from rustchain.domain.plans.verdict import Finding, Verdict
from rustchain.domain.policy.checks import Refusal, check_argument
from rustchain.domain.policy.model import Policy, parse_policy
from rustchain.domain.policy.obligations import Use, parse_template
from rustchain.steps import constraint_generators
from rustchain.verifier.engine import VerifierSettings, verify_plan
from rustchain.verifier.policy_files import default_policy
from tests.paths import DATA
from tests.unit.compile_helpers import compile_text

VERIFIER_DATA = DATA / "verifier"
GENERATORS = constraint_generators()


@dataclass(frozen=True)
class Expectation:
    """What a test mission's first line promises: `# expect: RULE STEP [policy=NAME]`."""

    rule: str
    step: str | None
    policy: str | None


def expectation(path: Path) -> Expectation:
    """The expectation written on a test mission's first line."""
    words = path.read_text().splitlines()[0].removeprefix("# expect:").split()
    policy = next((w.split("=", 1)[1] for w in words if w.startswith("policy=")), None)
    plain = [w for w in words if "=" not in w]
    step = plain[1] if len(plain) > 1 and plain[1] != "-" else None
    return Expectation(plain[0], step, policy)


@cache
def named_policy(name: str | None) -> Policy:
    """A policy of tests/data/verifier/policies, or the default policy."""
    if name is None:
        return default_policy()
    file = VERIFIER_DATA / "policies" / f"{name}.yaml"
    sink = DiagnosticSink(str(file))
    policy = parse_policy(file.read_bytes(), str(file), sink)
    assert policy is not None, [d.render() for d in sink.sorted()]
    return policy


def plan_of(path: Path, name: str | None = None) -> Plan:
    """The plan of a mission file (it must be valid)."""
    compilation = compile_text(path.read_text(), name or path.name)
    assert compilation.plan is not None, [d.render() for d in compilation.errors]
    return compilation.plan


def verify(plan: Plan, policy: Policy, timeout_ms: int = 5000) -> Verdict:
    """The verdict on a plan with every built-in constraint generator."""
    return verify_plan(plan, policy, GENERATORS, VerifierSettings(timeout_ms=timeout_ms))


def use_of(plan: Plan, step_id: str, field: str) -> Use:
    """The use a step's constraint generator declares for one of its fields."""
    step = plan.step(step_id)
    for obligation in GENERATORS[step.step_type](step):
        if isinstance(obligation, Use) and obligation.field == field:
            return obligation
    raise KeyError(f"{step_id}.{field}")


def argument_refusal(
    policy: Policy, plan: Plan, step: PlannedStep, finding: Finding
) -> Refusal | None:
    """The runtime's check of the argument a finding names, among all of the step's words,
    with the finding's counterexample substituted."""
    ids = {s.id: s for s in plan.steps}

    def concrete(text: str) -> str:
        template = parse_template(text, step, plan, ids)
        return template.substitute(
            {s.name: finding.counterexample.get(s.name, "x") for s in template.symbols}
        )

    args = [concrete(a) for a in step.parameters.get("args") or []]
    index = int((finding.field or "").removeprefix("args[").removesuffix("]"))
    shell = bool(step.parameters.get("shell"))
    return check_argument(policy, concrete(step.parameters["command"]), args, index, shell)
