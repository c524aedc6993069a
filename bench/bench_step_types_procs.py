"""Per-step cost of `process_start` and `process_kill` (issue 14) on a trivial program, beside
`noop` and a `command` step running `true` in the same sandbox: what starting a background
program (the sandbox, two log files, the supervisor) and killing its tree cost per step.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

from rustchain.executor.process_supervisor import MissionProcessSupervisor
from rustchain.platform.sandbox.selection import choose_sandbox
from rustchain.steps import default_registry
from rustchain.steps.support.runtime import StepContext, parameters_of
from rustchain.steps.support.sandboxing import SANDBOX_SETTING, ProgramSandbox

RUNS = 20
REGISTRY = default_registry(include_plugins=False)


async def _cycle(context: StepContext, runs: int) -> dict[str, list[float]]:
    """Time noop, command `true`, then process_start of `tail -f` and its process_kill."""
    times: dict[str, list[float]] = {"noop": [], "command true": [], "start": [], "kill": []}
    steps = {name: REGISTRY.types[name] for name in ("noop", "command", "process_start")}
    kill = REGISTRY.types["process_kill"]
    for n in range(runs + 1):  # the first round warms caches
        for label, name, values in (
            ("noop", "noop", {}),
            ("command true", "command", {"command": "true"}),
        ):
            definition = steps[name]
            assert definition.run is not None
            params = parameters_of(definition.parameters, values)
            started = time.perf_counter()
            await definition.run(params, context)
            if n:
                times[label].append(time.perf_counter() - started)
        start = steps["process_start"]
        assert start.run is not None and kill.run is not None
        params = parameters_of(start.parameters, {"command": "tail", "args": ["-f", "notes.txt"]})
        began = time.perf_counter()
        output = await start.run(params, context)
        middle = time.perf_counter()
        await kill.run(parameters_of(kill.parameters, {"handle": output["handle"]}), context)
        ended = time.perf_counter()
        if n:
            times["start"].append(middle - began)
            times["kill"].append(ended - middle)
    return times


async def _measure(sandbox: ProgramSandbox, root: Path) -> dict[str, list[float]]:
    supervisor = MissionProcessSupervisor("bench")
    context = StepContext("bench", "m", "s", root, 60, sandbox=sandbox)
    context = dataclasses.replace(context, processes=supervisor)
    try:
        return await _cycle(context, RUNS)
    finally:
        await supervisor.close()


def main() -> None:
    """Print each step's median ms beside noop's and a sandboxed `true`'s."""
    sandbox = choose_sandbox({SANDBOX_SETTING: "auto"})
    if sandbox.unavailable is not None:
        print(f"no sandbox here ({sandbox.unavailable}): process steps left out")
        return
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "notes.txt").write_text("notes\n")
        times = asyncio.run(_measure(sandbox, root))
    median = {label: statistics.median(values) * 1e3 for label, values in times.items()}
    print(f"sandbox {sandbox.name}, {os.cpu_count()} cores, median of {RUNS}")
    for label, key in (
        ("noop", "noop"),
        ("command (true)", "command true"),
        ("process_start (tail -f)", "start"),
        ("process_kill", "kill"),
    ):
        print(
            f"{label:<26} {median[key]:9.3f} ms/step (noop {median['noop']:.4f} ms, "
            f"command true {median['command true']:.3f} ms)"
        )


if __name__ == "__main__":
    main()
