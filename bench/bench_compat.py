"""Validate + plan of every mission file of RustChain's history and repository (issue 14).

The corpus is 122 + 29 small real files, so the figure is the whole corpus's time and the cost per
step, printed beside the per-step cost of a synthetic 1,000-step chain (bench_planner's shape) as
the baseline: real missions, with their warnings and implied dependencies, should cost about the
same per step.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from bench.bench_planner import chain
from rustchain.domain.plans.compiler import compile_mission
from rustchain.steps import default_registry
from rustchain.tools import compat_report

REPEATS = 5


def _corpus() -> list[tuple[str, bytes]]:
    history = sorted(p for p in compat_report.HISTORY.iterdir() if p.suffix in {".yaml", ".json"})
    files: list[Path] = [*history, *compat_report.mission_files()]
    return [(p.name, p.read_bytes()) for p in files]


def _once(corpus: list[tuple[str, bytes]]) -> tuple[float, int, int, dict[str, float]]:
    registry = default_registry()
    steps = loaded = 0
    each: dict[str, float] = {}
    started = time.perf_counter()
    for name, data in corpus:
        begun = time.perf_counter()
        compilation = compile_mission(data, name, registry)
        each[name] = time.perf_counter() - begun
        if compilation.plan is not None:
            loaded += 1
            steps += len(compilation.plan.steps)
    return time.perf_counter() - started, loaded, steps, each


def _baseline_per_step() -> float:
    data = chain(1_000)
    registry = default_registry()
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        compile_mission(data, "bench.yaml", registry)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) / 1_000


def main() -> None:
    """Print the corpus's validate + plan time, per file and per step, beside the baseline."""
    corpus = _corpus()
    runs = [_once(corpus) for _ in range(REPEATS)]
    total = statistics.median(r[0] for r in runs)
    _, loaded, steps, each = runs[-1]
    slowest = max(each, key=each.__getitem__)
    per_step = total / max(steps, 1)
    baseline = _baseline_per_step()
    print(f"files {len(corpus)} ({loaded} planned, {steps} steps in their plans)")
    print(f"validate+plan of the whole corpus: {total * 1e3:.1f} ms (median of {REPEATS})")
    print(f"per file: median {statistics.median(each.values()) * 1e3:.2f} ms, ", end="")
    print(f"slowest {each[slowest] * 1e3:.2f} ms ({slowest})")
    print(
        f"per planned step: {per_step * 1e6:.1f} us "
        f"(baseline: synthetic 1,000-step chain {baseline * 1e6:.1f} us per step)"
    )


if __name__ == "__main__":
    main()
