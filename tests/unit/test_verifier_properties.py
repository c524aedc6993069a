"""For random missions and policies, the verifier and the runtime checks never disagree:
whatever the verifier proves safe the runtime accepts, and every counterexample it refuses."""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rustchain.domain.plans.plan import Plan
from rustchain.domain.plans.verdict import VerdictStatus
from rustchain.domain.policy.checks import (
    Refusal,
    check_command,
    check_url,
    check_value,
)
from rustchain.domain.policy.model import (
    CommandPolicy,
    FilesystemPolicy,
    NetworkPolicy,
    Policy,
)
from rustchain.domain.policy.obligations import Use, parse_template
from rustchain.domain.policy.patterns import regex
from rustchain.domain.policy.rules import Sink
from tests.unit.compile_helpers import compile_text
from tests.unit.verifier_helpers import GENERATORS, argument_refusal, verify

PIECES = [
    *("out", "a", "..", ".", "/", ".git", "src", "x.txt", "//", "./"),
    *("https://", "http://", "example.com", "localhost", "10.0.0.1", ":443", ":8080", "@"),
    *("0x7f000001", "0x8080808", "[::ffff:7f00:1]", "1.2.3.0x4"),
    *("echo", "cat", "rm", " ", "-n", "~", "="),
]
PATTERNS = [
    "[a-z]{1,8}",
    "[a-z./]{1,6}",
    "(out|src)/[a-z]+",
    "[a-z]+\\.example\\.com",
    "[0-9]+",
    ".*",
]
STEP_SHAPES = {
    "create_file": ("path", "content: hi"),
    "read_file": ("path", ""),
    "http": ("url", ""),
    "command": ("command", ""),
}


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    """A policy with random programs, paths, hosts, ports and schemes."""
    programs = draw(st.lists(st.sampled_from(["echo", "cat", "ls", "c*"]), max_size=3))
    return Policy(
        commands=CommandPolicy(
            allowed_programs=programs,
            unmodelled_programs=["c*"] if "c*" in programs else [],
            allow_shell=draw(st.booleans()),
        ),
        filesystem=FilesystemPolicy(
            denied_paths=draw(
                st.lists(st.sampled_from([".git", "**/.env", "secret*"]), max_size=2)
            ),
            read_only_paths=draw(st.lists(st.sampled_from(["src", "docs/*.md"]), max_size=2)),
        ),
        network=NetworkPolicy(
            schemes=draw(st.lists(st.sampled_from(["https", "http"]), min_size=1, max_size=2)),
            allowed_hosts=draw(
                st.lists(
                    st.sampled_from(["*", "*.example.com", "example.com"]), min_size=1, max_size=2
                )
            ),
            denied_hosts=draw(
                st.lists(st.sampled_from(["localhost", "10.*", "*.local"]), max_size=2)
            ),
            ports=draw(st.lists(st.sampled_from([443, 80, 8080]), min_size=1, max_size=2)),
        ),
    )


@st.composite
def missions(draw: st.DrawFn) -> str:
    """A mission of a few steps whose texts mix literal pieces and variable references."""
    names = [f"v{i}" for i in range(draw(st.integers(1, 2)))]
    lines = ['version: "1.0"', "name: random", "variables:" if names else "variables: {}"]
    for name in names:
        kind = draw(st.sampled_from(["enum", "pattern", "pattern", "pattern", "free"]))
        if kind == "enum":
            values = draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=3, unique=True))
            lines.append(f"  {name}: {{type: string, enum: {json.dumps(values)}}}")
        elif kind == "pattern":
            pattern = json.dumps(draw(st.sampled_from(PATTERNS)))
            lines.append(f"  {name}: {{type: string, pattern: {pattern}}}")
        else:
            lines.append(f"  {name}: {{type: string}}")
    lines.append("steps:")
    for index in range(draw(st.integers(1, 3))):
        step_type = draw(st.sampled_from(sorted(STEP_SHAPES)))
        field, extra = STEP_SHAPES[step_type]
        params: dict[str, object] = {field: draw(_text(names)) or "a"}
        if step_type == "command":
            params["shell"] = draw(st.booleans())
            params["args"] = draw(st.lists(_text(names), max_size=2))
        rendered = json.dumps(params)
        if extra:
            rendered = rendered[:-1] + ", " + extra + "}"
        lines += [f"  - id: s{index}", f"    step_type: {step_type}", f"    parameters: {rendered}"]
    return "\n".join(lines) + "\n"


def _text(names: list[str]) -> st.SearchStrategy[str]:
    """Literal pieces around and between up to two variable references (most of the time one)."""
    literal = st.lists(st.sampled_from(PIECES), max_size=2).map("".join)
    reference = st.sampled_from([f"{{{n}}}" for n in names])
    maybe = st.one_of(reference, reference, st.just(""))
    second = st.one_of(st.just(""), st.just(""), reference)
    return st.tuples(literal, maybe, literal, second, literal).map("".join)


def _values(draw: st.DrawFn, text: str) -> dict[str, str]:
    """Concrete values of a mission's variables, each allowed by its declaration."""
    compilation = compile_text(text)
    assert compilation.plan is not None
    values: dict[str, str] = {}
    for name, spec in compilation.plan.variables.items():
        if spec.enum is not None:
            values[name] = str(draw(st.sampled_from(spec.enum)))
        elif spec.pattern is not None:
            values[name] = draw(st.from_regex(re.compile(spec.pattern), fullmatch=True))
        else:
            values[name] = draw(st.text(max_size=8))
    return values


def _unlisted(plan: Plan, name: str) -> bool:
    """Whether a symbol's values are not a short list (the verifier cannot try each)."""
    spec = plan.variables.get(name)
    return spec is None or spec.enum is None


def _runtime_check(policy: Policy, sink: Sink, concrete: str) -> Refusal | None:
    """What a runner checks: URLs through `check_url` (numeric hosts judged as addresses)."""
    return check_url(policy, concrete) if sink is Sink.URL else check_value(policy, sink, concrete)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=policies(), text=missions(), data=st.data())
def test_verifier_and_runtime_checks_never_disagree(
    policy: Policy, text: str, data: st.DataObject
) -> None:
    compilation = compile_text(text)
    assert compilation.plan is not None, [d.render() for d in compilation.errors]
    plan = compilation.plan
    verdict = verify(plan, policy)
    event(f"verdict: {verdict.status.value}")
    event(f"solver queries: {min(verdict.queries, 3)}{'+' if verdict.queries >= 3 else ''}")
    step_ids = {s.id: s for s in plan.steps}

    for finding in verdict.violations:
        assert finding.step_id is not None and finding.field is not None
        step = plan.step(finding.step_id)
        use = next(
            u
            for u in GENERATORS[step.step_type](step)
            if isinstance(u, Use) and u.field == finding.field
        )
        template = parse_template(use.text, step, plan, step_ids)
        concrete = template.substitute(
            {s.name: finding.counterexample[s.name] for s in template.symbols}
        )
        if use.command is None:
            refusal = _runtime_check(policy, use.sink, concrete)
        else:
            line = parse_template(use.command, step, plan, step_ids)
            if any(_unlisted(plan, s.name) for s in line.symbols):
                continue  # the program was not known: the rules of every program applied
            refusal = argument_refusal(policy, plan, step, finding)
        assert refusal is not None and refusal.rule == finding.rule, concrete

    if verdict.status is VerdictStatus.SAFE:
        values = _values(data.draw, text)
        for step in plan.steps:
            for use in GENERATORS[step.step_type](step):
                if not isinstance(use, Use):
                    continue
                concrete = parse_template(use.text, step, plan, step_ids).substitute(values)
                if use.command is not None:
                    command = parse_template(use.command, step, plan, step_ids).substitute(values)
                    refusal = check_command(policy, command, [concrete])
                else:
                    refusal = _runtime_check(policy, use.sink, concrete)
                assert refusal is None, (use, concrete)


@settings(max_examples=200, deadline=None)
@given(
    pattern=st.sampled_from([*PATTERNS, "^[A-Za-z ]{1,40}$", "a|b+c?", "[^/]*\\.txt"]),
    text=st.text(max_size=10),
)
def test_pattern_languages_agree_with_python_fullmatch(pattern: str, text: str) -> None:
    language, exact = regex(pattern)

    assert exact
    assert language.matches(text) == bool(re.fullmatch(pattern, text))
