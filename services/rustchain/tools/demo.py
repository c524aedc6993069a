"""`make demo`: run the example missions for real, then validate and plan RustChain's examples.

Runs use the `rustchain run` command exactly as a user would, with state under
.rustchain/demo. Until the services of issue 5 land, `rustchain run` executes in its own process
on the embedded stores; the recorded facts are the same.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rustchain.platform.mission_files import compile_file
from rustchain.steps import default_registry

ROOT = Path(__file__).resolve().parents[3]
COMPAT = ROOT.parent / "shared" / "compat" / "rustchain-community" / "examples"


RUNS = (
    ("missions/hello.yaml", ("--var", "who=RustChain demo")),
    ("missions/code_analysis.yaml", ("--policy", "missions/policies/repository-analysis.yaml")),
)


def run_missions(console: Console) -> bool:
    """Run the example missions with `rustchain run`; True when all succeed."""
    env = {**os.environ, "RUSTCHAIN_HOME": str(ROOT / ".rustchain" / "demo")}
    ok = True
    for mission, extra in RUNS:
        console.rule(f"rustchain run {mission} {' '.join(extra)}")
        command = [sys.executable, "-m", "rustchain", "run", mission, *extra]
        result = subprocess.run(command, cwd=ROOT, env=env, check=False)
        ok = ok and result.returncode == 0
    return ok


def main() -> None:
    """Run the example missions, then validate and plan RustChain's examples, and report."""
    console = Console(highlight=False, width=max(Console().width, 140))
    console.print(
        "[bold]RustChain demo[/bold]: two missions run end to end (files, commands, memory), "
        "each fact stored in a hash-chained event stream; then RustChain's own examples are "
        "validated and planned. (The gRPC services arrive in a later issue: runs execute "
        "in-process on the same stores.)"
    )
    runs_ok = run_missions(console)
    console.rule("RustChain's examples: validate and plan")
    files = sorted((ROOT / "missions").glob("*.yaml"))
    if COMPAT.is_dir():
        files += sorted(p for p in COMPAT.iterdir() if p.suffix in {".yaml", ".json"})
    registry = default_registry()
    table = Table(title="missions")
    for column in ("file", "result", "steps", "levels", "critical path", "plan hash"):
        table.add_column(column)
    valid = 0
    for path in files:
        shown = f"{path.parent.name}/{path.name}"
        compilation = compile_file(str(path), registry)
        plan = compilation.plan
        if plan is None:
            first = compilation.errors[0] if compilation.errors else None
            where = f"line {first.position.line}: {first.message[:60]}" if first else ""
            table.add_row(shown, "[red]invalid[/red]", "", "", where, "")
            continue
        valid += 1
        table.add_row(
            shown,
            "[green]valid[/green]",
            str(len(plan.steps)),
            str(len(plan.levels)),
            f"{len(plan.critical_path)} steps, {plan.critical_path_seconds:g} s",
            plan.content_hash[:12],
        )
    console.print(table)
    console.print(f"{valid} of {len(files)} missions are valid.")
    own_invalid = [
        p for p in files if p.parent == ROOT / "missions" and not compile_file(str(p), registry).ok
    ]
    sys.exit(0 if runs_ok and not own_invalid else 1)


if __name__ == "__main__":
    main()
