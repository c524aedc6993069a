"""Verification time for missions of 10 to 10,000 steps under the default policy, and hard cases.

Goal (issue 6): under 50 ms for 100 steps, and growth close to linear. Compilation is not timed;
the first run of each size warms the shared language cache and is discarded.
"""

from __future__ import annotations

import statistics
import time

from rustchain.domain.plans.compiler import compile_mission
from rustchain.domain.plans.plan import Plan
from rustchain.domain.plans.verdict import Verdict
from rustchain.domain.policy.model import FilesystemPolicy, Policy
from rustchain.steps import constraint_generators, default_registry
from rustchain.verifier.engine import verify_plan
from rustchain.verifier.policy_files import default_policy
from rustchain.verifier.settings import VerifierSettings

SIZES = (10, 100, 1_000, 10_000)
WIDTH = 50
REGISTRY = default_registry(include_plugins=False)
GENERATORS = constraint_generators()

HEADER = """version: "1.0"
name: bench
config: {max_parallel_steps: 32, timeout_seconds: 10}
variables:
  dir: {type: string, default: reports, pattern: "[a-z0-9_-]{1,32}"}
  host: {type: string, default: api.example.com, enum: [api.example.com, example.org]}
steps:
"""


def _own_variables(size: int, shared_type: bool) -> str:
    # Distinct patterns make every text a question of its own; one shared pattern, the same one.
    lines = []
    for i in range(0, size, 5):
        longest = 16 if shared_type else i // 5 + 1
        lines.append(f'  d{i}: {{type: string, default: a, pattern: "[a-z]{{1,{longest}}}"}}')
    return "\n".join(lines) + "\n" if lines else ""


def _step(index: int, symbolic_every: int) -> str:
    above = index - WIDTH
    deps = f"\n    depends_on: [s{above}]" if above >= 0 else ""
    kind = index % 5
    symbolic = symbolic_every > 0 and index % symbolic_every == 0
    if kind == 0:
        path = f"{{dir}}/part-{index}.txt" if symbolic else f"out/part-{index}.txt"
        if symbolic_every < 0:
            path = f"{{d{index}}}/part-{index}.txt"
        body = f"step_type: create_file\n    parameters: {{path: {path!r}, content: x}}"
    elif kind == 1:
        body = f"step_type: read_file\n    parameters: {{path: out/part-{index - 1}.txt}}"
    elif kind == 2:
        body = (
            f"step_type: command\n    parameters: {{command: wc, args: [-l, out/part-{index}.txt]}}"
        )
    elif kind == 3:
        url = f"https://{{host}}/v1/items/{index}"
        body = f"step_type: http\n    parameters: {{url: {url!r}}}"
    else:
        body = "step_type: llm\n    parameters: {prompt: summarise, max_tokens: 16}"
    return f"  - id: s{index}\n    {body}{deps}"


def mission(size: int, symbolic_every: int) -> Plan:
    """A wide mission; every `symbolic_every`-th step writes under `{dir}` (-1: each file write
    under a variable of its own with a pattern of its own, so no two texts share a solver query;
    -2: each under its own variable, all of one type)."""
    header = HEADER
    if symbolic_every < 0:
        variables = _own_variables(size, shared_type=symbolic_every == -2)
        header = HEADER.replace("steps:\n", variables + "steps:\n")
    text = header + "\n".join(_step(i, symbolic_every) for i in range(size)) + "\n"
    compilation = compile_mission(text.encode(), "bench.yaml", REGISTRY)
    assert compilation.plan is not None, [d.render() for d in compilation.errors]
    return compilation.plan


def timed(
    plan: Plan, policy: Policy, runs: int, settings: VerifierSettings | None = None
) -> tuple[float, Verdict]:
    """Median wall time of verifying the plan, and the verdict."""
    verdict = verify_plan(plan, policy, GENERATORS, settings)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        verdict = verify_plan(plan, policy, GENERATORS, settings)
        times.append(time.perf_counter() - started)
    return statistics.median(times), verdict


def _sizes(policy: Policy, symbolic_every: int, label: str, sizes: tuple[int, ...]) -> None:
    print(f"\n{label}")
    print(f"{'steps':>8} {'verify':>10} {'per step':>10} {'queries':>8} {'solver':>9}  verdict")
    for size in sizes:
        plan = mission(size, symbolic_every)
        seconds, verdict = timed(plan, policy, runs=5 if size <= 1_000 else 1)
        print(
            f"{size:>8} {seconds * 1000:>8.1f}ms {seconds / size * 1e6:>8.1f}us "
            f"{verdict.queries:>8} {verdict.solver_seconds * 1000:>7.1f}ms  {verdict.status.value}"
        )


HARD_TEXT = """version: "1.0"
name: hard
variables:
  v: {{type: string, default: a, pattern: {pattern!r}}}
steps:
  - id: s
    step_type: {step_type}
    parameters: {{{field}: {text!r}}}
"""

HARD_CASES = [
    (
        "path under 10 roots, 20 read-only, 10 denied: SAT",
        "[a-z./]{{1,64}}",
        "create_file",
        "path",
        "{v}/x",
    ),
    ("same roots, safe variable: UNSAT", "[a-z]+", "create_file", "path", "{v}/x"),
    ("length-bounded path pattern: SAT", "[a-z/.]{{1,64}}", "create_file", "path", "data/{v}"),
    (
        "host pattern against 29 denied hosts: UNSAT",
        "[a-z]{{1,20}}",
        "http",
        "url",
        "https://{v}.example.com/",
    ),
    (
        "host pattern that reaches *.local: SAT",
        "[a-z]+([.][a-z]+)*",
        "http",
        "url",
        "https://{v}/api",
    ),
    ("program from a loose pattern: SAT", "[a-z]{{1,8}}", "command", "command", "{v}"),
]


def _hard_policy() -> Policy:
    roots = [f"root{i}" for i in range(10)]
    return Policy(
        filesystem=FilesystemPolicy(
            denied_paths=[f"{r}/secret" for r in roots],
            read_only_paths=[*roots, *(f"lib{i}/**/*.so" for i in range(10))],
        )
    )


def _hard_cases() -> None:
    policy = _hard_policy()
    print("\nhard cases (one step; timeout per query 2000 ms unless said)")
    print(f"{'case':<58} {'time':>9}  verdict")
    cases = [(*case, 2000) for case in HARD_CASES]
    cases.append(("host case again, 5 ms per query: UNKNOWN is a refusal", *HARD_CASES[3][1:], 5))
    for label, pattern, step_type, field, text, timeout_ms in cases:
        source = HARD_TEXT.format(
            pattern=pattern.replace("{{", "{").replace("}}", "}"),
            step_type=step_type,
            field=field,
            text=text,
        )
        compilation = compile_mission(source.encode(), "hard.yaml", REGISTRY)
        assert compilation.plan is not None, [d.render() for d in compilation.errors]
        settings = VerifierSettings(timeout_ms=timeout_ms)
        seconds, verdict = timed(compilation.plan, policy, 3, settings)
        rules = ",".join(sorted({f.rule for f in [*verdict.violations, *verdict.undecided]}))
        print(f"{label:<58} {seconds * 1000:>7.1f}ms  {verdict.status.value} {rules}")


def main() -> None:
    """Print verification times by mission size, then the hard cases."""
    policy = default_policy()
    _sizes(policy, 0, "default policy, known paths (enumerated host)", SIZES)
    _sizes(policy, 10, "default policy, every 10th step writes under {dir}", SIZES)
    _sizes(policy, 5, "default policy, every file write under {dir}", SIZES[:3])
    _sizes(
        policy, -2, "default policy, every file write under its own variable, one type", SIZES[:3]
    )
    _sizes(
        policy,
        -1,
        "default policy, every file write under its own variable and pattern (worst case)",
        SIZES[:3],
    )
    _hard_cases()


if __name__ == "__main__":
    main()
