"""`rustchain run` against a running deployment: submit to the planner, watch on the executor."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import click
import grpc
from rich.console import Console
from rich.table import Table

from rustchain.cli import exit_codes
from rustchain.domain.errors import CorruptHistoryError
from rustchain.domain.runs.mission_run import MissionRun
from rustchain.domain.runs.run_events import RUN_FACTS, RunEvent
from rustchain.generated.rustchain.executor.v1 import executor_pb2, executor_pb2_grpc
from rustchain.generated.rustchain.planner.v1 import planner_pb2, planner_pb2_grpc
from rustchain.platform.credentials.tokens import cli_token
from rustchain.platform.deployment.endpoints import (
    Endpoints,
    EndpointsError,
    configured_endpoints,
    endpoints_path,
    process_alive,
)
from rustchain.platform.grpc.auth import CALL_TOKEN
from rustchain.platform.grpc.client import (
    ServiceUnavailableError,
    call_error,
    open_channel,
    tenant_metadata,
    wait_ready,
)
from rustchain.platform.storage.home import rustchain_home
from rustchain.platform.storage.mission_files import compile_file
from rustchain.platform.telemetry.process import command_span
from rustchain.platform.telemetry.setup import TelemetrySettingError
from rustchain.steps import default_registry

RECONNECT_TIMEOUT_SECONDS = 30.0
"""How long a watch waits for a restarted executor before giving up."""


def deployment_endpoints() -> Endpoints | None:
    """The running deployment RUSTCHAIN_ENDPOINT or $RUSTCHAIN_HOME/endpoints.json names, if any."""
    home = rustchain_home()
    try:
        endpoints = configured_endpoints(home)
        if endpoints is not None and endpoints.pid is not None and not process_alive(endpoints.pid):
            path = endpoints_path(home)
            click.echo(
                f"rustchain: ignoring {path}: its deployment (pid {endpoints.pid}) is gone",
                err=True,
            )
            return None
    except EndpointsError as error:
        raise click.UsageError(str(error)) from None
    if endpoints is None or not {"planner", "executor"} <= endpoints.services.keys():
        return None
    return endpoints


def _render(diagnostic: planner_pb2.Diagnostic) -> str:
    where = diagnostic.file
    if diagnostic.line:
        where += f":{diagnostic.line}:{diagnostic.column}"
    return f"{where}: {diagnostic.severity}: {diagnostic.message}"


def _workspace(file: str) -> str:
    """The mission's `config.workspace`, resolved beside the file as the in-process run does."""
    plan = compile_file(file, default_registry()).plan
    if plan is None or plan.config.workspace is None:
        return ""
    return str((Path(file).parent / plan.config.workspace).resolve())


def watched_fact(event: executor_pb2.MissionEvent) -> RunEvent:
    """The fact a WatchMission message carries, upcast from the schema version it was stored at
    to the one this client knows (0: a server that did not say, and sent the current version).

    Raises CorruptHistoryError when this client cannot read it (a newer version, a bad payload)."""
    try:
        payload = json.loads(event.payload_json)
    except ValueError as error:
        raise CorruptHistoryError(f"event #{event.version} is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise CorruptHistoryError(f"event #{event.version} is not a JSON object")
    version = event.schema_version or RUN_FACTS.current_version(event.type)
    where = f"#{event.version} of mission {event.mission_id}"
    return RUN_FACTS.parse_payload(event.type, version, payload, where)


class RemoteRun:
    """One submission and the watch of its progress."""

    def __init__(self, endpoints: Endpoints, tenant: str, console: Console) -> None:
        self.planner_at = endpoints.services["planner"]
        # Every replica: the channel spreads the calls and fails over (platform/grpc/spreading.py).
        self.executor_at = endpoints.target("executor")
        self.metadata = tenant_metadata(tenant)
        self.tenant = tenant
        self.console = console

    async def submit(self, file: str, text: str, variables: dict[str, str]) -> str | None:
        """The started mission's id, or None after printing why it was refused."""
        async with open_channel(self.planner_at) as channel:
            await wait_ready(channel, "planner", self.planner_at)
            planner = planner_pb2_grpc.PlannerServiceStub(channel)
            request = planner_pb2.SubmitMissionRequest(
                yaml=text, file_name=file, variables=variables, workspace=_workspace(file)
            )
            try:
                reply = await planner.SubmitMission(request, metadata=self.metadata)
            except grpc.aio.AioRpcError as error:
                raise call_error(error, "planner", self.planner_at) from None
        for diagnostic in reply.diagnostics:
            click.echo(_render(diagnostic), err=True)
        if not reply.accepted:
            refused = f" ({reply.verdict_status})" if reply.verdict_status else ""
            click.echo(f"{file}: not started{refused}", err=True)
            return None
        self.console.print(
            f"mission [bold]{reply.mission_name}[/bold] ({reply.mission_id}), tenant "
            f"{self.tenant}, on the deployment at {self.planner_at}"
        )
        return reply.mission_id

    async def watch(self, mission_id: str) -> tuple[MissionRun | None, Counter[str]]:
        """Show each fact as the executor records it; reconnect if the executor restarts."""
        from rustchain.cli.run import Progress

        progress = Progress(self.console)
        run: MissionRun | None = None
        counts: Counter[str] = Counter()
        seen = 0
        async with open_channel(self.executor_at) as channel:
            executor = executor_pb2_grpc.ExecutorServiceStub(channel)
            while run is None or not run.finished:
                request = executor_pb2.WatchMissionRequest(
                    mission_id=mission_id, after_version=seen
                )
                try:
                    async for event in executor.WatchMission(request, metadata=self.metadata):
                        fact = watched_fact(event)
                        if run is None:
                            run = MissionRun.fold([fact])
                        else:
                            run.apply(fact)
                        seen = event.version
                        counts[event.type] += 1
                        progress(run, [fact])
                except grpc.aio.AioRpcError as error:
                    if error.code() is not grpc.StatusCode.UNAVAILABLE:
                        raise
                    self.console.print("[yellow]executor unreachable; waiting for it[/yellow]")
                    await wait_ready(
                        channel,
                        "executor",
                        self.executor_at,
                        RECONNECT_TIMEOUT_SECONDS,
                        fail_fast=False,
                    )
                    continue
                if run is None or not run.finished:
                    break
        return run, counts


def _summary(console: Console, run: MissionRun, counts: Counter[str]) -> None:
    table = Table(title="event stream", show_header=True)
    table.add_column("event")
    table.add_column("count", justify="right")
    for event_type, count in counts.items():
        table.add_row(event_type, str(count))
    console.print(table)
    console.print(f"{sum(counts.values())} events; workspace {run.workspace}")
    for name, value in run.outputs.items():
        shown = value if isinstance(value, str) else repr(value)
        console.print(f"output {name}: {shown[:500]}")


def run_remote(
    file: str, variables: dict[str, str], tenant: str, endpoints: Endpoints, detach: bool = False
) -> int:
    """Submit and watch a mission on the deployment (or, detached, only submit it)."""
    CALL_TOKEN.set(cli_token(rustchain_home(), None))
    console = Console(highlight=False)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        click.echo(f"{file}:1:1: error: cannot read the file: {error}", err=True)
        return exit_codes.MISSION_AT_FAULT
    # Detached, standard output is the mission id alone, for scripts.
    remote = RemoteRun(
        endpoints, tenant, Console(stderr=True, highlight=False) if detach else console
    )

    async def submit_and_watch() -> tuple[MissionRun | None, Counter[str]]:
        mission_id = await remote.submit(file, text, variables)
        if mission_id is None:
            return None, Counter()
        if detach:
            click.echo(mission_id)
            return None, Counter({"detached": 1})
        return await remote.watch(mission_id)

    try:
        with command_span("rustchain run", **{"rustchain.mission.file": file}):
            run, counts = asyncio.run(submit_and_watch())
    except ServiceUnavailableError as error:
        click.echo(f"rustchain: {error}", err=True)
        return exit_codes.UNREACHABLE
    except TelemetrySettingError as error:
        click.echo(f"rustchain: {error}", err=True)
        return exit_codes.USAGE
    except CorruptHistoryError as error:
        click.echo(f"rustchain: a fact the executor sent cannot be read: {error}", err=True)
        return exit_codes.MISSION_AT_FAULT
    if run is None:
        return exit_codes.OK if counts["detached"] else exit_codes.MISSION_AT_FAULT
    _summary(console, run, counts)
    return exit_codes.OK if run.outcome == "succeeded" else exit_codes.MISSION_AT_FAULT
