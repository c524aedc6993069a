"""`rustchain run`: run a mission durably and show its progress.

With a running deployment (`rustchain up`) the mission is submitted to its planner. Without one,
the planner, verifier and executor applications run in this process (bootstrap.local), on the
embedded stores under $RUSTCHAIN_HOME: the same use cases and the same facts, with no ports.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from pathlib import Path
from typing import NoReturn

import click
from eventsourcing.persistence import PersistenceError
from rich.console import Console
from rich.table import Table

from rustchain.bootstrap.executor import tenant_policies
from rustchain.bootstrap.local import open_local_deployment
from rustchain.bootstrap.stores import StoreUnreachableError, store_settings
from rustchain.cli import exit_codes
from rustchain.cli.common import tenant_option
from rustchain.domain.access.quotas import QuotaExceededError
from rustchain.domain.events.chain import verify_chain
from rustchain.domain.events.names import EventNameError
from rustchain.domain.language.yaml_reader import ReadLimits
from rustchain.domain.policy.model import Policy
from rustchain.domain.runs.mission_run import MissionRun
from rustchain.domain.runs.run_events import (
    MissionFinished,
    RunEvent,
    StepFailed,
    StepInterrupted,
    StepSkipped,
    StepStarted,
    StepSucceeded,
)
from rustchain.executor.application import ExecutorApplication, WorkspaceRefusedError
from rustchain.executor.driver import MissionDriver
from rustchain.planner.application import Problem
from rustchain.platform.storage.event_store import (
    describe_store,
)
from rustchain.verifier.policy_files import (
    PolicyFileError,
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


@click.command()
@click.argument("file")
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE", help="Set a variable.")
@tenant_option("The tenant to run as.")
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
    sys.exit(_run_here(file, _parse_vars(variables), tenant, policy_path))


def _read(file: str) -> bytes | None:
    """The mission file's bytes (one over the limit, for the reader to say it is too large), or
    None after saying why it cannot be read, as the compiler would."""
    try:
        with Path(file).open("rb") as handle:
            return handle.read(ReadLimits().max_bytes + 1)
    except OSError as error:
        click.echo(f"{file}:1:1: error: cannot read the file: {error.strerror or error}", err=True)
        return None


def _run_here(file: str, variables: dict[str, str], tenant: str, policy_path: str | None) -> int:
    """Submit the mission to the planner, verifier and executor applications of this process,
    then drive it here on the embedded stores; returns the exit code."""
    text = _read(file)
    if text is None:
        return exit_codes.MISSION_AT_FAULT
    console = Console(highlight=False)
    policies: dict[str, Policy] = {}

    def policy_for(tenant: str) -> Policy:
        # Read once, when the verifier first asks (after the mission compiled and bound).
        if tenant not in policies:
            policies[tenant] = _policy(policy_path, tenant)
        return policies[tenant]

    try:
        with open_local_deployment(
            os.environ, file, policy_for=policy_for, listener=Progress(console)
        ) as local:
            submission = asyncio.run(local.planner.submit(tenant, text, file, variables))
            for problem in submission.problems:
                click.echo(_render(problem), err=True)
            verdict = local.verifier.verdicts[-1] if local.verifier.verdicts else None
            if not submission.accepted:
                if verdict is not None:
                    click.echo(verdict.render()[-1], err=True)
                    click.echo(f"{file}: refused: nothing was run", err=True)
                return exit_codes.MISSION_AT_FAULT
            mission_id = submission.mission_id
            name = submission.plan.mission_name if submission.plan else ""
            console.print(f"mission [bold]{name}[/bold] ({mission_id}), tenant {tenant}")
            if verdict is not None:
                console.print(verdict.render()[-1])
            result = asyncio.run(drive_here(local.executor, tenant, mission_id))
            _summary(console, local.executor.history(tenant, mission_id), result)
    except StoreUnreachableError as error:
        _unreachable(str(error))
    except PersistenceError as error:
        _unreachable(f"{describe_store(store_settings('executor', os.environ))}: {error}")
    except (QuotaExceededError, WorkspaceRefusedError) as error:
        click.echo(f"{file}: refused: {error}", err=True)
        return exit_codes.MISSION_AT_FAULT
    return exit_codes.OK if result.outcome == "succeeded" else exit_codes.MISSION_AT_FAULT


async def drive_here(executor: ExecutorApplication, tenant: str, mission_id: str) -> MissionRun:
    """Drive a mission in this process to its end, under its lease (renewed by heartbeat when
    the store is shared by executor replicas)."""
    driver = MissionDriver(executor)
    try:
        driver.drive(tenant, mission_id)
        return await driver.finished(tenant, mission_id)
    finally:
        await driver.stop()


def _render(problem: Problem) -> str:
    """A problem as the compiler prints one (without a position when it has none)."""
    where = f"{problem.file}:{problem.line}:{problem.column}" if problem.line else problem.file
    return f"{where}: {problem.severity}: {problem.message}"


def _unreachable(store: str) -> NoReturn:
    """One line naming the store (never its password); what was recorded stays recorded."""
    click.echo(f"rustchain: event store unreachable: {store}", err=True)
    sys.exit(exit_codes.UNREACHABLE)


def _policy(policy_path: str | None, tenant: str) -> Policy:
    """The policy named, else the tenant's ($RUSTCHAIN_HOME/policies/<tenant>.yaml), else the
    default policy; a broken file ends the command here."""
    try:
        if policy_path is None:
            return tenant_policies(os.environ)(tenant)
        return load_policy(policy_path)
    except PolicyFileError as error:
        for diagnostic in error.diagnostics:
            click.echo(diagnostic.render(), err=True)
        sys.exit(exit_codes.USAGE)
    except EventNameError as error:
        raise click.BadParameter(str(error), param_hint="--tenant") from None


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
