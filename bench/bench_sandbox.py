"""Sandbox figures (issue 11): the per-command cost of each OS sandbox mechanism beside an
unsandboxed run of the same command, through the command step itself (median of RUNS).

Steps that run no program never choose a sandbox (the executor probes at the first program), so
bench_executor's noop chain and concurrent missions pay nothing for it.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from rustchain.domain.policy.model import CommandPolicy, Policy
from rustchain.platform.sandbox.selection import choose_sandbox
from rustchain.steps.command import CommandParameters, command
from rustchain.steps.support.runtime import StepContext
from rustchain.steps.support.sandboxing import (
    SANDBOX_PATH,
    SANDBOX_SETTING,
    ProgramSandbox,
    SandboxedProgram,
)

RUNS = 40
COMMANDS = {
    "true": CommandParameters(command="true"),
    "sh -c 'echo x'": CommandParameters(command="sh", args=["-c", "echo x"]),
}
# The unsandboxed baseline is the policy's `sandbox: optional` with no mechanism.
POLICY = Policy(
    commands=CommandPolicy(
        allowed_programs=["*"], unmodelled_programs=["*"], denied_arguments=[], sandbox="optional"
    )
)


async def _median_ms(params: CommandParameters, context: StepContext) -> float:
    await command(params, context)  # warm: first-use costs (imports, generated /etc) excluded
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        await command(params, context)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


async def _setup_ms(sandbox: ProgramSandbox, workspace: Path) -> tuple[float, float]:
    """Medians of the set-up the mechanism reports (`rustchain.sandbox.setup.duration`) and of
    the whole run, for `true` through the sandbox alone."""
    program = SandboxedProgram(["true"], workspace, workspace, {"PATH": SANDBOX_PATH}, 30, 1024)
    await sandbox.run(program)
    setups, walls = [], []
    for _ in range(RUNS):
        started = time.perf_counter()
        result = await sandbox.run(program)
        walls.append(time.perf_counter() - started)
        setups.append(result.setup_seconds or 0.0)
    return statistics.median(setups) * 1e3, statistics.median(walls) * 1e3


def main() -> None:
    """Print each mechanism's median per command, and its overhead over the baseline."""
    sandboxes: dict[str, ProgramSandbox] = {
        "unsandboxed": choose_sandbox({SANDBOX_SETTING: "none"})
    }
    for mechanism in ("bubblewrap", "landlock"):
        sandboxes[mechanism] = choose_sandbox({SANDBOX_SETTING: mechanism})
    with tempfile.TemporaryDirectory() as scratch:
        workspace = Path(scratch)
        for text, params in COMMANDS.items():
            figures: dict[str, float] = {}
            for label, sandbox in sandboxes.items():
                if label != "unsandboxed" and sandbox.unavailable is not None:
                    continue
                context = StepContext(
                    "bench", "m", "s", workspace, 30, policy=POLICY, sandbox=sandbox
                )
                figures[label] = asyncio.run(_median_ms(params, context))
            base = figures["unsandboxed"]
            shown = [f"unsandboxed {base:.1f} ms"] + [
                f"{label} {ms:.1f} ms (+{ms - base:.1f})"
                for label, ms in figures.items()
                if label != "unsandboxed"
            ]
            print(f"command `{text}`, median of {RUNS}: " + ", ".join(shown))
        for label, sandbox in sandboxes.items():
            if label != "unsandboxed" and sandbox.unavailable is not None:
                print(f"{label}: not available here ({sandbox.unavailable})")
        for label, sandbox in sandboxes.items():
            if label == "unsandboxed" or sandbox.unavailable is not None:
                continue
            setup, wall = asyncio.run(_setup_ms(sandbox, workspace))
            print(
                f"{label}: set-up as the metric records it {setup:.1f} ms of a {wall:.1f} ms run"
                f" of `true` (median of {RUNS})"
            )
