"""`rustchain validate`, `plan` and `schema`: the mission language on the command line."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table

from rustchain.cli import exit_codes
from rustchain.cli.app import app
from rustchain.domain.compiler import Compilation
from rustchain.domain.mission_schema import mission_json_schema
from rustchain.domain.plan import Plan
from rustchain.platform.mission_files import compile_file
from rustchain.steps import default_registry


def _print_diagnostics(compilation: Compilation) -> None:
    for diagnostic in compilation.diagnostics:
        click.echo(diagnostic.render(), err=True)


@app.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--strict", is_flag=True, help="Make every warning an error (unknown keys, implied order...)."
)
def validate(files: tuple[str, ...], strict: bool) -> None:
    """Check mission files; print every problem as FILE:LINE:COL: error: MESSAGE."""
    registry = default_registry()
    invalid = 0
    for path in files:
        compilation = compile_file(path, registry)
        if strict:
            compilation = compilation.strict()
        _print_diagnostics(compilation)
        if compilation.plan is not None:
            steps = len(compilation.plan.steps)
            click.echo(f"{path}: valid ({steps} step{'s' if steps != 1 else ''})")
        else:
            invalid += 1
            click.echo(f"{path}: invalid ({len(compilation.errors)} error(s))", err=True)
    sys.exit(exit_codes.MISSION_AT_FAULT if invalid else exit_codes.OK)


def _plan_table(plan: Plan) -> Table:
    table = Table(title=f"{plan.mission_name} (version {plan.mission_version})", show_lines=False)
    table.add_column("level", justify="right")
    table.add_column("steps that may run in parallel")
    by_id = {step.id: step for step in plan.steps}
    for depth, level in enumerate(plan.levels):
        cells = ", ".join(f"{step_id} [dim]({by_id[step_id].step_type})[/dim]" for step_id in level)
        table.add_row(str(depth), cells)
    return table


@app.command()
@click.argument("file")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the plan as stable JSON with its hash."
)
def plan(file: str, as_json: bool) -> None:
    """Show a mission's plan: its levels of parallel steps and its critical path."""
    compilation = compile_file(file, default_registry())
    _print_diagnostics(compilation)
    if compilation.plan is None:
        sys.exit(exit_codes.MISSION_AT_FAULT)
    result = compilation.plan
    if as_json:
        click.echo(result.to_json())
        return
    console = Console(highlight=False)
    console.print(_plan_table(result))
    path = " -> ".join(result.critical_path)
    console.print(f"critical path: {path} (at most {result.critical_path_seconds:g} s)")
    console.print(f"plan hash: {result.content_hash}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the mission format, for editors."""
    document = mission_json_schema(default_registry())
    click.echo(json.dumps(document, indent=2, sort_keys=True))
