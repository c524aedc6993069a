"""Validate + plan time for missions of 1,000, 10,000 and 100,000 steps (chains and wide DAGs).

Goal (issue 3): a 10,000-step mission in under 1 s, and time growing linearly with size.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from rustchain.domain.plans.compiler import compile_mission
from rustchain.steps import default_registry

SIZES = (1_000, 10_000, 100_000)
HEADER = (
    'version: "1.0"\nname: bench\nconfig: {max_parallel_steps: 64, timeout_seconds: 60}\nsteps:\n'
)


def _step(index: int, deps: list[int]) -> str:
    lines = [
        f"  - id: s{index}",
        f"    name: Step {index}",
        "    step_type: create_file" if index % 2 else "    step_type: command",
        "    parameters:",
    ]
    if index % 2:
        lines += [
            f"      path: out/{index}.txt",
            f'      content: "from {{s{deps[0]}.output}}"' if deps else '      content: "first"',
        ]
    else:
        lines += ["      command: echo", f'      args: ["{index}"]']
    if deps:
        lines.append("    depends_on: [" + ", ".join(f"s{d}" for d in deps) + "]")
    return "\n".join(lines)


def chain(size: int) -> bytes:
    """Each step depends on the one before: one level per step."""
    steps = [_step(i, [i - 1] if i else []) for i in range(size)]
    return (HEADER + "\n".join(steps) + "\n").encode()


def wide(size: int) -> bytes:
    """One root, then layers of 100 parallel steps, each depending on two of the layer above."""
    width = 100
    steps = []
    for i in range(size):
        if i == 0:
            deps: list[int] = []
        elif i <= width:
            deps = [0]
        else:
            above = ((i - 1) // width - 1) * width + 1
            deps = sorted({above + (i % width), above + ((i + 1) % width)})
        steps.append(_step(i, deps))
    return (HEADER + "\n".join(steps) + "\n").encode()


def _time(build: Callable[[int], bytes], size: int, repeats: int) -> tuple[float, int]:
    data = build(size)
    registry = default_registry()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        compilation = compile_mission(data, "bench.yaml", registry)
        samples.append(time.perf_counter() - started)
        assert compilation.plan is not None, compilation.errors[:3]
    return statistics.median(samples), len(data)


def main() -> None:
    """Print validate + plan time per shape and size, per step, and against the 1 s goal."""
    print(f"{'shape':<6} {'steps':>8} {'file':>9} {'validate+plan':>14} {'per step':>10}")
    for name, build in (("chain", chain), ("wide", wide)):
        per_step = []
        for size in SIZES:
            seconds, length = _time(build, size, repeats=3 if size < 100_000 else 1)
            per_step.append(seconds / size)
            print(
                f"{name:<6} {size:>8,} {length / 1_048_576:>7.1f}MB {seconds:>12.3f} s "
                f"{seconds / size * 1e6:>7.1f} us"
            )
            if size == 10_000:
                verdict = "meets" if seconds < 1.0 else "MISSES"
                print(f"       10,000 steps in {seconds:.3f} s: {verdict} the 1 s goal")
        growth = per_step[-1] / per_step[0]
        print(f"       per-step cost at 100,000 vs 1,000 steps: x{growth:.2f} (1.00 = linear)")


if __name__ == "__main__":
    main()
