"""`rustchain run`: run a mission durably and show its progress.

Until the services of issue 5 land, the run happens in this process on the embedded stores
(SQLite event store and memory under $RUSTCHAIN_HOME); the facts recorded are the same.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, NoReturn

import click
from eventsourcing.persistence import PersistenceError
from rich.console import Console
from rich.table import Table

from rustchain.cli import exit_codes
from rustchain.cli.app import app
from rustchain.cli.trainer_runs import open_trainer_events
from rustchain.domain.bindings import VariableBindingError, bind_variables
from rustchain.domain.event_chain import verify_chain
from rustchain.domain.event_names import EventNameError
from rustchain.domain.mission_run import MissionRun
from rustchain.domain.plan import Plan
from rustchain.domain.policy import Policy
from rustchain.domain.quotas import QuotaExceededError, TenantQuotas
from rustchain.domain.run_events import (
    MissionFinished,
    RunEvent,
    StepFailed,
    StepInterrupted,
    StepSkipped,
    StepStarted,
    StepSucceeded,
)
from rustchain.domain.step_types import StepTypeRegistry
from rustchain.domain.verdict import Verdict
from rustchain.executor.application import ExecutorApplication, WorkspaceRefusedError, utc_now
from rustchain.platform.event_store import (
    EventStoreError,
    EventStoreSettings,
    describe_store,
    open_event_store,
)
from rustchain.platform.home import rustchain_home
from rustchain.platform.memory_store import SqliteMemoryStore, TenantMemory
from rustchain.platform.mission_files import compile_file
from rustchain.platform.sandbox.selection import LazySandbox
from rustchain.steps import default_registry
from rustchain.verifier.policy_files import (
    POLICIES_FOLDER,
    PolicyFileError,
    TenantPolicies,
    load_policy,
)


def _parse_vars(values: tuple[str, ...]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for item in values:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise click.BadParameter(f"expected NAME=VALUE, found {item!r}", param_hint="--var")
        parsed[name] = value
    return parsed


class Progress:
    """Prints each fact of the run as one line, as it is recorded."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, run: MissionRun, events: list[RunEvent]) -> None:
        """Show the facts just recorded."""
        for event in events:
            line = self._line(run, event)
            if line:
                self.console.print(line)

    @staticmethod
    def _line(run: MissionRun, event: RunEvent) -> str | None:
        if isinstance(event, StepStarted):
            name = run.plan.step(event.step_id).name
            again = f" (attempt {event.attempt})" if event.attempt > 1 else ""
            return f"[cyan]>[/cyan] {event.step_id}: {name}{again}"
        if isinstance(event, StepSucceeded):
            return f"[green]ok[/green] {event.step_id}"
        if isinstance(event, StepFailed):
            retry = f"; retrying at {event.retry_at:%H:%M:%S}" if event.retry_at else ""
            return f"[red]failed[/red] {event.step_id}: {event.error}{retry}"
        if isinstance(event, StepInterrupted):
            return f"[yellow]interrupted[/yellow] {event.step_id}: {event.reason}"
        if isinstance(event, StepSkipped):
            return f"[yellow]skipped[/yellow] {event.step_id}: {event.reason}"
        if isinstance(event, MissionFinished):
            colour = "green" if event.outcome == "succeeded" else "red"
            return f"[bold {colour}]mission {event.outcome}[/bold {colour}]"
        return None


@app.command()
@click.argument("file")
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE", help="Set a variable.")
@click.option("--tenant", default="default", show_default=True, help="The tenant to run as.")
@click.option(
    "--policy", "policy_path", metavar="P", help="The tenant's policy; default: the default policy."
)
@click.option(
    "--detach", is_flag=True, help="Submit to the running deployment, print the mission id, return."
)
def run(
    file: str, variables: tuple[str, ...], tenant: str, policy_path: str | None, detach: bool
) -> None:
    """Verify a mission against the policy, run it and show its progress.

    Exit 0 when it succeeds; 1 when it fails, is refused by the verifier, or a file or variable is
    at fault.
    """
    from rustchain.cli.remote_run import deployment_endpoints, run_remote

    deployment = deployment_endpoints() if policy_path is None else None
    if deployment is not None:  # a running deployment (`rustchain up`): docs/services.md
        sys.exit(run_remote(file, _parse_vars(variables), tenant, deployment, detach))
    if detach:
        raise click.UsageError(
            "--detach needs a running deployment: start one with `rustchain up` "
            "(and run without --policy: the deployment applies the tenant's policy)"
        )
    registry = default_registry()
    compilation = compile_file(file, registry)
    for diagnostic in compilation.diagnostics:
        click.echo(diagnostic.render(), err=True)
    plan = compilation.plan
    if plan is None:
        sys.exit(exit_codes.MISSION_AT_FAULT)
    try:
        bound = bind_variables(plan.variables, _parse_vars(variables))
    except VariableBindingError as error:
        for problem in error.problems:
            click.echo(f"{file}: error: {problem}", err=True)
        sys.exit(exit_codes.MISSION_AT_FAULT)
    policy = _policy(policy_path, tenant)
    verdict = _verify(file, plan, policy)
    sys.exit(_run_here(file, plan, bound, tenant, policy, verdict, registry))


def _run_here(
    file: str,
    plan: Plan,
    bound: dict[str, Any],
    tenant: str,
    policy: Policy,
    verdict: Verdict,
    registry: StepTypeRegistry,
) -> int:
    """Run a verified plan in this process on the embedded stores; returns the exit code."""
    console = Console(highlight=False)
    workspace = None
    if plan.config.workspace is not None:
        workspace = (Path(file).parent / plan.config.workspace).resolve()
    home = rustchain_home()
    settings = EventStoreSettings.from_environ("executor")
    try:
        store = open_event_store(settings)
    except (EventStoreError, PersistenceError) as error:
        _unreachable(settings, error)
    # The tenant's promoted llm-step policies, learned by the trainer (docs/trainer.md).
    try:
        learned = open_trainer_events()
    except (EventStoreError, PersistenceError) as error:
        _unreachable(EventStoreSettings.from_environ("trainer"), error)
    memory = SqliteMemoryStore(home / "memory.sqlite3")
    try:
        executor = ExecutorApplication(
            store,
            registry,
            home / "workspaces",
            memory_for=lambda t: TenantMemory(memory, t),
            listener=Progress(console),
            settings={k: v for k, v in os.environ.items() if k.startswith("RUSTCHAIN_LLM_")},
            policy_for=lambda _tenant: policy,
            quotas=TenantQuotas.from_settings(os.environ),
            sandbox=LazySandbox(os.environ),
            step_policies=learned.step_policy,
        )
        mission_id = uuid.uuid4().hex
        _record_verdict(verdict, tenant, mission_id)
        executor.start(tenant, plan, bound, mission_id=mission_id, workspace=workspace)
        console.print(f"mission [bold]{plan.mission_name}[/bold] ({mission_id}), tenant {tenant}")
        console.print(verdict.render()[-1])
        result = asyncio.run(executor.drive(tenant, mission_id))
        _summary(console, store.mission_events(tenant, mission_id), result)
    except (EventStoreError, PersistenceError) as error:
        _unreachable(settings, error)
    except (QuotaExceededError, WorkspaceRefusedError) as error:
        click.echo(f"{file}: refused: {error}", err=True)
        return exit_codes.MISSION_AT_FAULT
    finally:
        memory.close()
        learned.store.close()
        store.close()
    return exit_codes.OK if result.outcome == "succeeded" else exit_codes.MISSION_AT_FAULT


def _unreachable(settings: EventStoreSettings, error: Exception) -> NoReturn:
    """One line naming the store (never its password); what was recorded stays recorded."""
    click.echo(f"rustchain: event store unreachable: {describe_store(settings)}: {error}", err=True)
    sys.exit(exit_codes.UNREACHABLE)


def _policy(policy_path: str | None, tenant: str) -> Policy:
    """The policy named, else the tenant's ($RUSTCHAIN_HOME/policies/<tenant>.yaml), else the
    default policy; a broken file ends the command here."""
    try:
        if policy_path is None:
            return TenantPolicies(rustchain_home() / POLICIES_FOLDER)(tenant)
        return load_policy(policy_path)
    except PolicyFileError as error:
        for diagnostic in error.diagnostics:
            click.echo(diagnostic.render(), err=True)
        sys.exit(exit_codes.USAGE)
    except EventNameError as error:
        raise click.BadParameter(str(error), param_hint="--tenant") from None


def _verify(file: str, plan: Plan, policy: Policy) -> Verdict:
    """The verdict on the plan; a violation or an undecided rule ends the command here."""
    # The solver is imported only by the verbs that need it.
    from rustchain.steps import constraint_generators
    from rustchain.verifier.engine import verify_plan

    verdict = verify_plan(plan, policy, constraint_generators())
    if not verdict.safe:
        for line in verdict.render():
            click.echo(line, err=True)
        click.echo(f"{file}: refused: nothing was run", err=True)
        sys.exit(exit_codes.MISSION_AT_FAULT)
    return verdict


def _record_verdict(verdict: Verdict, tenant: str, mission_id: str) -> None:
    """Keep the SAFE verdict in the verifier's store, before the mission's first step."""
    from rustchain.verifier.recording import record_verdict

    settings = EventStoreSettings.from_environ("verifier")
    try:
        store = open_event_store(settings)
    except (EventStoreError, PersistenceError) as error:
        _unreachable(settings, error)
    try:
        record_verdict(store, verdict, tenant, mission_id, lambda: str(uuid.uuid4()), utc_now)
    finally:
        store.close()


def _summary(console: Console, events: list, result: MissionRun) -> None:  # type: ignore[type-arg]
    table = Table(title="event stream", show_header=True)
    table.add_column("event")
    table.add_column("count", justify="right")
    for event_type, count in Counter(e.type for e in events).items():
        table.add_row(event_type, str(count))
    console.print(table)
    broken = verify_chain(events)
    chain = "whole and untouched" if broken is None else f"BROKEN: {broken.describe()}"
    console.print(f"{len(events)} events, hash chain {chain}; workspace {result.workspace}")
    for name, value in result.outputs.items():
        shown = value if isinstance(value, str) else repr(value)
        console.print(f"output {name}: {shown[:500]}")
