"""`rustchain validate`, `plan` and `schema`: the mission language on the command line."""

from __future__ import annotations

import gc
import json
import sys
from typing import TYPE_CHECKING

import click

from rustchain.cli import exit_codes
from rustchain.domain.language.mission_schema import mission_json_schema
from rustchain.domain.plans.compiler import Compilation
from rustchain.platform.storage.mission_files import compile_file
from rustchain.steps import default_registry

if TYPE_CHECKING:
    from rich.table import Table

    from rustchain.domain.plans.plan import Plan


def _print_diagnostics(compilation: Compilation) -> None:
    for diagnostic in compilation.diagnostics:
        click.echo(diagnostic.render(), err=True)


@click.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--strict", is_flag=True, help="Make every warning an error (unknown keys, implied order...)."
)
def validate(files: tuple[str, ...], strict: bool) -> None:
    """Check mission files; print every problem as FILE:LINE:COL: error: MESSAGE."""
    # As for `plan`: the collector would only rescan each compiled mission once compiling ends.
    gc.disable()
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


TABLE_LEVELS = 200
"""Up to this many levels a plan is drawn as a table; beyond, as aligned lines: rich lays out every
cell (about a millisecond a row), so a 10,000-step chain would take seconds to print."""


def _step_cell(plan: Plan, level: list[str], markup: bool) -> str:
    by_id = plan.step
    if markup:
        return ", ".join(f"{step_id} [dim]({by_id(step_id).step_type})[/dim]" for step_id in level)
    return ", ".join(f"{step_id} ({by_id(step_id).step_type})" for step_id in level)


def _plan_table(plan: Plan) -> Table:
    from rich.table import Table

    table = Table(title=f"{plan.mission_name} (version {plan.mission_version})", show_lines=False)
    table.add_column("level", justify="right")
    table.add_column("steps that may run in parallel")
    for depth, level in enumerate(plan.levels):
        table.add_row(str(depth), _step_cell(plan, level, markup=True))
    return table


def _plan_lines(plan: Plan) -> list[str]:
    width = max(len("level"), len(str(len(plan.levels) - 1)))
    lines = [
        f"{plan.mission_name} (version {plan.mission_version})",
        f"{'level':>{width}}  steps that may run in parallel",
    ]
    lines += [
        f"{depth:>{width}}  {_step_cell(plan, level, markup=False)}"
        for depth, level in enumerate(plan.levels)
    ]
    return lines


@click.command()
@click.argument("file")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the plan as stable JSON with its hash."
)
def plan(file: str, as_json: bool) -> None:
    """Show a mission's plan: its levels of parallel steps and its critical path."""
    # The compiled mission is a heap of small objects that lives until the process ends, right
    # after: the cycle collector would only rescan it, while compiling (which pauses it too), in
    # the first collection once compiling switched it back on (a third of a second for 10,000
    # steps), and while the plan is dumped for its hash. So this verb leaves it off.
    gc.disable()
    compilation = compile_file(file, default_registry())
    _print_diagnostics(compilation)
    if compilation.plan is None:
        sys.exit(exit_codes.MISSION_AT_FAULT)
    result = compilation.plan
    if as_json:
        click.echo(result.to_json())
        return
    if len(result.levels) <= TABLE_LEVELS:
        # rich is for the verbs that draw tables, not for `validate`.
        from rich.console import Console

        Console(highlight=False).print(_plan_table(result))
    else:
        click.echo("\n".join(_plan_lines(result)))
    path = " -> ".join(result.critical_path)
    click.echo(f"critical path: {path} (at most {result.critical_path_seconds:g} s)")
    click.echo(f"plan hash: {result.content_hash}")


@click.command()
def schema() -> None:
    """Print the JSON Schema of the mission format, for editors."""
    document = mission_json_schema(default_registry())
    click.echo(json.dumps(document, indent=2, sort_keys=True))
