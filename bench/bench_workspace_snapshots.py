"""Workspace snapshots (issue 15): the cost per step of keeping a mission's workspace for a new
owner (RUSTCHAIN_WORKSPACE_SNAPSHOTS=artifact) beside the same chain with snapshots off, for a
workspace no step changes, and for 1 MB and 20 MB workspaces one file of which each step
rewrites (so every step boundary archives and keeps the whole tree). SQLite, encrypted store.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

from rustchain.bootstrap.executor import build_executor
from rustchain.domain.plans.compiler import compile_mission
from rustchain.domain.plans.plan import Plan
from rustchain.domain.runs.run_events import WorkspaceSaved, run_fact
from rustchain.platform.storage.event_store import (
    EventStoreSettings,
    new_cipher_key,
    open_event_store,
)
from rustchain.platform.storage.workspace_archive import RACY_NANOSECONDS
from rustchain.steps import default_registry

REGISTRY = default_registry(include_plugins=False)
MB = 1024 * 1024
FILE_BYTES = 256 * 1024
"""The workspace is made of files of this size (a source tree's files are smaller; a build's
outputs larger): what a step's boundary has to list, read and archive."""


def _plan(steps: int, writes: bool) -> Plan:
    lines = []
    for i in range(steps):
        after = f", depends_on: [s{i - 1}]" if i else ""
        if writes:
            body = f"step_type: create_file, parameters: {{path: counter.txt, content: '{i}'}}"
        else:
            body = "step_type: noop"
        lines.append(f"  - {{id: s{i}, {body}{after}}}")
    text = 'version: "1.0"\nname: bench\nsteps:\n' + "\n".join(lines) + "\n"
    compilation = compile_mission(text.encode(), "bench.yaml", REGISTRY)
    assert compilation.plan is not None, compilation.errors[:3]
    return compilation.plan


def _fill(folder: Path, size: int) -> None:
    for n in range(size // FILE_BYTES):
        part = folder / f"part{n // 16}"
        part.mkdir(exist_ok=True)
        (part / f"data{n}.bin").write_bytes(os.urandom(FILE_BYTES))


def per_step(home: Path, mode: str, size: int, steps: int, writes: bool) -> tuple[float, int]:
    """Seconds per step of a chain over a workspace of `size` bytes, and the snapshots kept."""
    home.mkdir(parents=True, exist_ok=True)
    name = f"b{mode}{size}{int(writes)}"
    settings = EventStoreSettings(name, home, cipher_key=new_cipher_key())
    store = open_event_store(settings)
    environ = {"RUSTCHAIN_HOME": str(home), "RUSTCHAIN_WORKSPACE_SNAPSHOTS": mode}
    executor = build_executor(environ, store, registry=REGISTRY, policy_for=None)
    try:
        mission = executor.start("bench", _plan(steps, writes), {})
        _fill(home / "workspaces" / "bench" / mission, size)
        # Let the files age past the racy margin, as a workspace does between steps that leave
        # it alone: a change time cannot be set back (utime moves it), so only waiting ages it.
        time.sleep(RACY_NANOSECONDS / 1e9)
        began = time.perf_counter()
        run = asyncio.run(executor.drive("bench", mission))
        elapsed = time.perf_counter() - began
        assert run.outcome == "succeeded"
        facts = [run_fact(e) for e in store.mission_events("bench", mission)]
        return elapsed / steps, sum(isinstance(f, WorkspaceSaved) for f in facts)
    finally:
        store.close()


def main() -> None:
    """Print snapshots off and on side by side, per workspace."""
    cases = [
        ("20 MB workspace, unchanged by its steps", 20 * MB, 200, False),
        ("1 MB workspace, a file rewritten per step", 1 * MB, 40, True),
        ("20 MB workspace, a file rewritten per step", 20 * MB, 15, True),
    ]
    print(f"cores: {os.cpu_count()}; SQLite, events and artifacts encrypted (AES-GCM)")
    print(f"{'workspace':<44} {'off':>10} {'artifact':>10} {'extra':>10}  snapshots")
    with tempfile.TemporaryDirectory() as scratch:
        for name, size, steps, writes in cases:
            off, _ = per_step(Path(scratch) / "off", "off", size, steps, writes)
            on, kept = per_step(Path(scratch) / "on", "artifact", size, steps, writes)
            print(
                f"{name:<44} {off * 1e3:>7.2f} ms {on * 1e3:>7.2f} ms {(on - off) * 1e3:>7.2f} ms"
                f"  {kept} kept over {steps} steps"
            )


if __name__ == "__main__":
    main()
