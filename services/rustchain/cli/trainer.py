"""`rustchain trainer optimize|policies|rollback|export`: the trainer's learning, from the CLI.

`optimize` runs a suite's missions through the executor in this process (on the embedded
stores under $RUSTCHAIN_HOME, like `rustchain run`), judges them, searches llm-step settings and
promotes the best only on held-out evidence; the policies it promotes apply to the tenant's next
`rustchain run` of that mission. Every judgement and policy change is an event in the trainer's
store.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from rustchain.bootstrap.trainer_runs import (
    ExecutorMissionRunner,
    MissionRefusedError,
    bounds_of,
    llm_settings,
    open_trainer_events,
    verified_plan,
)
from rustchain.cli import exit_codes
from rustchain.cli.common import tenant_option
from rustchain.domain.events.names import EventNameError, validate_tenant
from rustchain.domain.policy.model import Policy
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.platform.storage.home import rustchain_home
from rustchain.trainer.exports import FORMATS, export_lines, rewarded_trajectories
from rustchain.trainer.optimizer import Optimiser, PolicyRefusedError
from rustchain.trainer.suite_files import SuiteFileError, load_suite
from rustchain.trainer.trainer_events import TrainerEvents
from rustchain.trainer.trajectory_store import SqliteTrajectoryStore
from rustchain.verifier.policy_files import POLICIES_FOLDER, PolicyFileError, TenantPolicies

TRAJECTORIES_FILE = "trainer.sqlite3"


def _tenant(tenant: str) -> str:
    try:
        return validate_tenant(tenant)
    except EventNameError as error:
        raise click.BadParameter(str(error), param_hint="--tenant") from None


def _tenant_policy(tenant: str) -> Policy:
    try:
        return TenantPolicies(rustchain_home() / POLICIES_FOLDER)(tenant)
    except PolicyFileError as error:
        for diagnostic in error.diagnostics:
            click.echo(diagnostic.render(), err=True)
        sys.exit(exit_codes.USAGE)


@contextmanager
def _events() -> Iterator[TrainerEvents]:
    events = open_trainer_events()
    try:
        yield events
    finally:
        events.store.close()


@click.group()
def trainer() -> None:
    """Learn llm-step policies from suites of missions; list, roll back, export.

    See docs/trainer.md.
    """


@trainer.command()
@click.argument("suite_dir")
@tenant_option("The tenant whose policy to learn.", required=True)
@click.option("--seed", default=0, show_default=True, help="Seed of sampling and resampling.")
@click.option("--json", "as_json", is_flag=True, help="Print only the result, as JSON.")
def optimize(suite_dir: str, tenant: str, seed: int, as_json: bool) -> None:
    """Search the suite's llm-step settings and promote the best if held-out scores prove it.

    Exit 0 when the optimisation ran (promoted or not); 1 when the suite or its mission is at
    fault or refused by the tenant's policy.
    """
    tenant = _tenant(tenant)
    console = Console(highlight=False, stderr=as_json, quiet=as_json)
    try:
        loaded = load_suite(suite_dir)
        policy = _tenant_policy(tenant)
        plan = verified_plan(loaded.mission_file, policy)
    except SuiteFileError as error:
        for diagnostic in error.diagnostics:
            click.echo(diagnostic.render(), err=True)
        sys.exit(exit_codes.MISSION_AT_FAULT)
    except MissionRefusedError as error:
        click.echo(f"{suite_dir}: refused: {error}", err=True)
        sys.exit(exit_codes.MISSION_AT_FAULT)
    home = rustchain_home()
    store = open_event_store(EventStoreSettings.from_environ("executor"))
    trajectories = SqliteTrajectoryStore(home / TRAJECTORIES_FILE)
    runner = ExecutorMissionRunner(plan, tenant, policy, store, home)
    try:
        with _events() as events:
            optimiser = Optimiser(
                loaded.suite,
                plan.mission_name,
                tenant,
                runner,
                events,
                policy,
                llm_settings(),
                progress=lambda line: console.print(f"[cyan]>[/cyan] {line}"),
                seed=seed,
                bounds=bounds_of(plan),
            )
            try:
                outcome = asyncio.run(optimiser.optimise())
            except (PolicyRefusedError, MissionRefusedError) as error:
                click.echo(f"{suite_dir}: refused: {error}", err=True)
                sys.exit(exit_codes.MISSION_AT_FAULT)
            for run in outcome.runs:
                trajectories.put(run.trajectory)
    finally:
        runner.close()
        trajectories.close()
        store.close()
    if as_json:
        click.echo(json.dumps(outcome.summary()))
        return
    table = Table(title=f"{loaded.suite.name}: held-out scenarios")
    for column in ("policy", "score", "passed"):
        table.add_column(column)
    for name, score in (("baseline", outcome.baseline), ("candidate", outcome.candidate)):
        table.add_row(name, f"{score.score:.3f}", f"{score.passed}/{score.total}")
    console.print(table)
    verdict = "[green]promoted[/green]" if outcome.promoted else "[yellow]not promoted[/yellow]"
    console.print(
        f"policy version {outcome.policy_version} ({outcome.chosen}): {verdict}; "
        f"{outcome.missions_run} missions run"
    )


@trainer.command()
@tenant_option("The tenant whose policies to list.", required=True)
@click.option("--mission", help="Only this mission's policy.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def policies(tenant: str, mission: str | None, as_json: bool) -> None:
    """Every version of the tenant's learned policies with its evidence; * marks the promoted."""
    tenant = _tenant(tenant)
    with _events() as events:
        states = [
            events.policies(tenant, m) for m in ([mission] if mission else events.missions(tenant))
        ]
    if as_json:
        click.echo(json.dumps([s.model_dump(mode="json") for s in states]))
        return
    console = Console(highlight=False)
    if not states:
        console.print(f"tenant {tenant} has no learned policies")
    for state in states:
        table = Table(title=f"{state.mission} (promoted: version {state.current or 'none'})")
        for column in (
            "version",
            "settings",
            "held-out baseline",
            "candidate",
            "interval",
            "state",
        ):
            table.add_column(column)
        for version in state.versions.values():
            mark = (
                "* promoted"
                if version.version == state.current
                else ("rolled back" if version.rolled_back_at else "")
            )
            interval = (
                f"[{version.interval[0]:+.3f}, {version.interval[1]:+.3f}]"
                if version.interval
                else ""
            )
            table.add_row(
                str(version.version),
                version.reason,
                f"{version.baseline.score:.3f}" if version.baseline else "",
                f"{version.candidate.score:.3f}" if version.candidate else "",
                interval,
                mark,
            )
        console.print(table)


@trainer.command()
@tenant_option("The tenant whose policy to roll back.", required=True)
@click.option("--mission", required=True, help="The mission whose policy to roll back.")
def rollback(tenant: str, mission: str) -> None:
    """Restore the policy promoted before the current one (or the mission as written)."""
    tenant = _tenant(tenant)
    with _events() as events:
        try:
            now = events.rolled_back(tenant, mission)
        except KeyError as error:
            raise click.UsageError(f"cannot roll back: {error.args[0]}") from None
    shown = f"version {now}" if now else "the mission as written (no learned policy)"
    click.echo(f"{mission} for tenant {tenant} now runs with {shown}")


@trainer.command()
@tenant_option("The tenant whose trajectories to export.", required=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The JSONL file.")
@click.option("--min-reward", default=0.0, show_default=True, help="Leave out lower rewards.")
def export(tenant: str, fmt: str, out: str, min_reward: float) -> None:
    """Judged trajectories as training data (JSON Lines) for weight training elsewhere."""
    tenant = _tenant(tenant)
    home = rustchain_home()
    trajectories = SqliteTrajectoryStore(home / TRAJECTORIES_FILE)
    try:
        with _events() as events:
            found = trajectories.trajectories(tenant)
            judged = {
                t.mission_id: [e.payload for e in events.judgements(tenant, t.mission_id)]
                for t in found
            }
    finally:
        trajectories.close()
    rewarded = rewarded_trajectories(found, judged)
    count = 0
    try:
        with Path(out).open("w", encoding="utf-8") as handle:
            for record in export_lines(fmt, rewarded, min_reward):
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
    except OSError as error:
        raise click.UsageError(f"cannot write {out}: {error.strerror or error}") from None
    click.echo(f"{count} {fmt} record(s) from {len(rewarded)} judged trajectories written to {out}")
