"""`rustchain status`, `missions` and `cancel`: a running deployment's missions over gRPC, or,
without one, the missions `rustchain run` recorded in this machine's executor store."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

import click
import grpc
from rich.console import Console
from rich.table import Table

from rustchain.bootstrap.executor import open_executor
from rustchain.cli import exit_codes
from rustchain.cli.common import tenant_option
from rustchain.cli.remote_run import deployment_endpoints
from rustchain.domain.plans.artifacts import ArtifactRef, describe_ref
from rustchain.domain.runs.mission_run import MissionRun
from rustchain.executor.application import ExecutorApplication
from rustchain.executor.lease_owner import describe_owner, owner_message
from rustchain.generated.rustchain.executor.v1 import executor_pb2, executor_pb2_grpc
from rustchain.platform.credentials.tokens import cli_token
from rustchain.platform.grpc.auth import CALL_TOKEN
from rustchain.platform.grpc.client import (
    ServiceUnavailableError,
    call_error,
    open_channel,
    tenant_metadata,
    wait_ready,
)
from rustchain.platform.storage.event_store import EventStoreError
from rustchain.platform.storage.home import rustchain_home


@dataclass
class MissionView:
    """What the verbs show of a mission, wherever it came from."""

    mission_id: str
    name: str
    status: str
    plan_hash: str = ""
    workspace: str = ""
    steps: list[tuple[str, str, str, int, str]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    owner: str = ""
    """Which executor replica drives it (`status` only)."""


def _from_run(mission_id: str, run: MissionRun) -> MissionView:
    steps = [
        (
            s.id,
            s.step_type,
            run.steps[s.id].status.value,
            run.steps[s.id].attempt,
            run.steps[s.id].error or "",
        )
        for s in run.plan.steps
    ]
    return MissionView(
        mission_id,
        run.plan.mission_name,
        run.outcome or "running",
        run.plan_hash,
        run.workspace,
        steps,
        dict(run.outputs),
    )


def _from_summary(summary: executor_pb2.MissionSummary) -> MissionView:
    steps = [(s.id, s.step_type, s.status, s.attempt, s.error) for s in summary.steps]
    outputs = json.loads(summary.outputs_json) if summary.outputs_json else {}
    finished = summary.status != "running"
    owner = describe_owner(summary.owner, finished) if summary.HasField("owner") else ""
    return MissionView(
        summary.mission_id,
        summary.mission_name,
        summary.status,
        summary.plan_hash,
        summary.workspace,
        steps,
        outputs,
        owner,
    )


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"rustchain: {message}", err=True)
    sys.exit(code)


@contextlib.contextmanager
def _local() -> Iterator[ExecutorApplication]:
    """The executor store of this machine (missions run in-process by `rustchain run`)."""
    with contextlib.ExitStack() as stack:
        try:
            executor = stack.enter_context(open_executor(os.environ))
        except EventStoreError as error:
            _fail(f"cannot open the executor's event store: {error}", exit_codes.UNREACHABLE)
        yield executor


async def _remote(tenant: str, call: str, request: Any) -> Any:
    endpoints = deployment_endpoints()
    assert endpoints is not None
    endpoint = endpoints.target("executor")
    async with open_channel(endpoint) as channel:
        await wait_ready(channel, "executor", endpoint)
        stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        try:
            return await getattr(stub, call)(request, metadata=tenant_metadata(tenant))
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                _fail(error.details() or "no such mission", exit_codes.MISSION_AT_FAULT)
            raise call_error(error, "executor", endpoint) from None


def _call(tenant: str, call: str, request: Any) -> Any:
    CALL_TOKEN.set(cli_token(rustchain_home(), None))
    try:
        return asyncio.run(_remote(tenant, call, request))
    except ServiceUnavailableError as error:
        _fail(str(error), exit_codes.UNREACHABLE)


def _shown(value: Any, tenant: str) -> str:
    ref = ArtifactRef.of_value(value)
    if ref is not None:
        # A large output is shown by reference: its bytes stay in the artifact store.
        return describe_ref(ref, tenant)
    return value if isinstance(value, str) else json.dumps(value)


def _show(view: MissionView, tenant: str) -> None:
    console = Console(highlight=False)
    console.print(f"mission [bold]{view.name}[/bold] ({view.mission_id}): {view.status}")
    console.print(f"plan hash {view.plan_hash}; workspace {view.workspace}")
    if view.owner:
        console.print(view.owner)
    table = Table(show_header=True)
    for column in ("step", "type", "status", "attempt", "error"):
        table.add_column(column)
    for step_id, step_type, status, attempt, error in view.steps:
        table.add_row(step_id, step_type, status, str(attempt), error[:80])
    console.print(table)
    for name, value in view.outputs.items():
        console.print(f"output {name}: {_shown(value, tenant)}")


@click.command()
@click.argument("mission_id")
@tenant_option("The mission's tenant.")
def status(mission_id: str, tenant: str) -> None:
    """Show a mission's state: each step's status, attempts and errors, and its outputs."""
    if deployment_endpoints() is not None:
        request = executor_pb2.GetMissionRequest(mission_id=mission_id)
        _show(_from_summary(_call(tenant, "GetMission", request)), tenant)
        return
    with _local() as executor:
        try:
            run = executor.load(tenant, mission_id)
        except KeyError:
            _fail(f"no mission '{mission_id}' for tenant '{tenant}'", exit_codes.MISSION_AT_FAULT)
        view = _from_run(mission_id, run)
        owner = owner_message(executor.leases, tenant, mission_id)
        view.owner = describe_owner(owner, run.finished)
        _show(view, tenant)


@click.command()
@tenant_option("Whose missions.")
def missions(tenant: str) -> None:
    """List a tenant's missions, oldest first, with their status."""
    views: list[MissionView] = []
    if deployment_endpoints() is not None:
        token = ""
        while True:
            request = executor_pb2.ListMissionsRequest(page_token=token)
            listed = _call(tenant, "ListMissions", request)
            views += [_from_summary(summary) for summary in listed.missions]
            token = listed.next_page_token
            if not token:
                break
    else:
        with _local() as executor:
            views = [
                MissionView(e.mission_id, e.mission_name, e.status, e.plan_hash, e.workspace)
                for e in executor.index().of_tenant(tenant)
            ]
    table = Table(show_header=True)
    for column in ("mission", "name", "status"):
        table.add_column(column)
    for view in views:
        table.add_row(view.mission_id, view.name, view.status)
    Console(highlight=False).print(table)


@click.command()
@click.argument("mission_id")
@tenant_option("The mission's tenant.")
@click.option("--reason", default="cancelled from the command line", help="Recorded with it.")
def cancel(mission_id: str, tenant: str, reason: str) -> None:
    """Stop a mission: nothing new starts, pending steps are skipped."""
    if deployment_endpoints() is not None:
        request = executor_pb2.CancelMissionRequest(mission_id=mission_id, reason=reason)
        cancelled = _call(tenant, "CancelMission", request).cancelled
    else:
        with _local() as executor:
            try:
                cancelled = executor.cancel(tenant, mission_id, reason)
            except KeyError:
                _fail(
                    f"no mission '{mission_id}' for tenant '{tenant}'", exit_codes.MISSION_AT_FAULT
                )
    if not cancelled:
        _fail(
            f"mission {mission_id} had already finished or been cancelled",
            exit_codes.MISSION_AT_FAULT,
        )
    click.echo(f"mission {mission_id}: cancel requested")
