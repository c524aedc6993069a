"""`make demo`: until the services exist (issue 5), validate and plan the example missions."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rustchain.platform.mission_files import compile_file
from rustchain.steps import default_registry

ROOT = Path(__file__).resolve().parents[3]
COMPAT = ROOT.parent / "shared" / "compat" / "rustchain-community" / "examples"


def main() -> None:
    """Validate and plan every mission under missions/ and RustChain's examples, and report."""
    console = Console(highlight=False, width=max(Console().width, 140))
    console.print(
        "[bold]RustChain demo[/bold]: the services arrive in a later issue, so this demo "
        "validates and plans the example missions (nothing is executed)."
    )
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
    sys.exit(1 if own_invalid else 0)


if __name__ == "__main__":
    main()
