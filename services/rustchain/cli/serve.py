"""`rustchain serve SERVICE [--port P]`: one service in this process, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import click

from rustchain.cli import exit_codes
from rustchain.domain.quotas import TenantQuotas
from rustchain.executor.application import ExecutorApplication
from rustchain.executor.servicer import ExecutorServicer
from rustchain.executor.servicer import binding as executor_binding
from rustchain.memory.servicer import MemoryServicer
from rustchain.memory.servicer import binding as memory_binding
from rustchain.planner.application import PlannerApplication
from rustchain.planner.clients import GrpcExecutor, GrpcVerifier
from rustchain.planner.servicer import PlannerServicer
from rustchain.planner.servicer import binding as planner_binding
from rustchain.platform.deployment import (
    SERVICES,
    EndpointsError,
    configured_endpoints,
    deployment_nats_url,
)
from rustchain.platform.event_store import EventStoreError, EventStoreSettings, open_event_store
from rustchain.platform.grpc_auth import AuthInterceptor
from rustchain.platform.grpc_client import open_channel
from rustchain.platform.grpc_decoding import MessageLimitError, max_message_bytes
from rustchain.platform.grpc_memory import GrpcMemoryClient
from rustchain.platform.grpc_server import LOOPBACK, GrpcServerError, ServiceBinding, start_server
from rustchain.platform.home import rustchain_home
from rustchain.platform.jetstream import StreamUsageReader
from rustchain.platform.memory_store import SqliteMemoryStore, TenantMemory
from rustchain.platform.nats_server import NATS_URL_VARIABLE
from rustchain.platform.private_files import tighten_home
from rustchain.platform.sandbox.selection import SandboxSettingError, choose_sandbox, describe
from rustchain.platform.secret_store import FileSecretStore
from rustchain.platform.signing_keys import (
    VERDICT_KEYS,
    SigningKeyError,
    load_private_key,
    load_public_key,
    token_public_key,
)
from rustchain.platform.telemetry.grpc_tracing import server_interceptors
from rustchain.platform.telemetry.process import telemetry_for
from rustchain.platform.telemetry.sandbox_timing import TimedSandbox
from rustchain.platform.telemetry.setup import TelemetrySettingError
from rustchain.steps import default_registry
from rustchain.steps.runtime import MemoryClient
from rustchain.steps.toolchain_runs import TOOLCHAIN_SETTINGS_PREFIX
from rustchain.trainer.consuming import consume_until
from rustchain.trainer.servicer import TrainerServicer
from rustchain.trainer.servicer import binding as trainer_binding
from rustchain.trainer.trajectory_store import SqliteTrajectoryStore
from rustchain.verifier.application import VerifierApplication
from rustchain.verifier.policy_files import POLICIES_FOLDER, TenantPolicies
from rustchain.verifier.servicer import VerifierServicer
from rustchain.verifier.servicer import binding as verifier_binding

Closer = Callable[[], Awaitable[None]]
LLM_SETTINGS_PREFIX = "RUSTCHAIN_LLM_"


class ServeError(RuntimeError):
    """A service cannot be set up: a missing endpoint, an unusable store."""


@dataclass
class Hosted:
    """A service's servicers, what to do once it listens, and what to release when it stops."""

    bindings: list[ServiceBinding]
    on_started: Callable[[], object] = lambda: None
    closers: list[Closer] = field(default_factory=list)
    # What the service says about itself before it serves (the executor: its sandbox).
    lines: list[str] = field(default_factory=list)

    async def close(self) -> None:
        """Release everything, last opened first."""
        for closer in reversed(self.closers):
            await closer()


def _sync(function: Callable[[], object]) -> Closer:
    async def close() -> None:
        function()

    return close


def _store(name: str, environ: Mapping[str, str]) -> EventStoreSettings:
    return EventStoreSettings.from_environ(name, environ)


def _missing(variable: str, path: Path) -> str:
    return (
        f"the deployment authenticates its calls but no verdict key was found: set {variable}"
        f" (or {variable}_FILE), or put it at {path} (`rustchain up` makes it)"
    )


def _endpoint(service: str, given: Mapping[str, str], home: Path, env: Mapping[str, str]) -> str:
    if service in given:
        return given[service]
    configured = configured_endpoints(home, env)
    if configured is None or service not in configured.services:
        raise ServeError(f"no endpoint for the {service} service: pass --{service} HOST:PORT")
    return configured.services[service]


def host_verifier(environ: Mapping[str, str], peers: Mapping[str, str]) -> Hosted:
    """The verifier on its own event store, with each tenant's policy from the home."""
    home = rustchain_home(environ)
    # The verifier alone holds the verdict key's private half: what it signs, the executor trusts.
    verdict_key = load_private_key(home, VERDICT_KEYS, environ)
    if verdict_key is None and token_public_key(home, environ) is not None:
        raise ServeError(_missing(VERDICT_KEYS.private_variable, VERDICT_KEYS.private_path(home)))
    store = open_event_store(_store("verifier", environ))
    application = VerifierApplication(
        store, TenantPolicies(home / POLICIES_FOLDER), signing_key=verdict_key
    )
    servicer = VerifierServicer(application)
    return Hosted([verifier_binding(servicer)], closers=[_sync(store.close)])


def host_memory(environ: Mapping[str, str], peers: Mapping[str, str]) -> Hosted:
    """The memory service on the SQLite FTS5 store under the home."""
    store = SqliteMemoryStore(rustchain_home(environ) / "memory.sqlite3")
    return Hosted([memory_binding(MemoryServicer(store))], closers=[_sync(store.close)])


def host_executor(environ: Mapping[str, str], peers: Mapping[str, str]) -> Hosted:
    """The executor on its event store; rag steps use the memory service when one is named."""
    home = rustchain_home(environ)
    # Public keys only: an executor (or a step that takes it over) cannot sign a verdict.
    verdict_key = load_public_key(home, VERDICT_KEYS, environ)
    if verdict_key is None and token_public_key(home, environ) is not None:
        raise ServeError(_missing(VERDICT_KEYS.public_variable, VERDICT_KEYS.public_path(home)))
    store = open_event_store(_store("executor", environ))
    closers: list[Closer] = [_sync(store.close)]
    memory_for: Callable[[str], MemoryClient]
    try:
        endpoint = _endpoint("memory", peers, home, environ)
    except ServeError:
        local = SqliteMemoryStore(home / "memory.sqlite3")
        closers.append(_sync(local.close))
        memory_for = lambda tenant: TenantMemory(local, tenant)  # noqa: E731
    else:
        channel = open_channel(endpoint)
        closers.append(channel.close)
        memory_for = lambda tenant: GrpcMemoryClient(channel, endpoint, tenant)  # noqa: E731
    try:
        sandbox = choose_sandbox(environ)
    except SandboxSettingError as error:
        raise ServeError(str(error)) from None
    policies = TenantPolicies(home / POLICIES_FOLDER)
    application = ExecutorApplication(
        store,
        default_registry(),
        home / "workspaces",
        memory_for=memory_for,
        settings={
            k: v
            for k, v in environ.items()
            if k.startswith((LLM_SETTINGS_PREFIX, TOOLCHAIN_SETTINGS_PREFIX))
        },
        policy_for=policies,
        quotas=TenantQuotas.from_settings(environ),
        sandbox=TimedSandbox(sandbox),
        secrets=FileSecretStore.from_environ(environ, home),
    )
    nats_url = deployment_nats_url(home, environ)
    reader = StreamUsageReader(nats_url) if nats_url is not None else None
    servicer = ExecutorServicer(
        application,
        reader.usage if reader is not None else None,
        verdict_key=verdict_key,
    )
    closers.append(servicer.stop)
    if reader is not None:
        closers.append(reader.close)
    return Hosted(
        [executor_binding(servicer)], servicer.resume_unfinished, closers, [describe(sandbox)]
    )


def host_planner(environ: Mapping[str, str], peers: Mapping[str, str]) -> Hosted:
    """The planner, calling the verifier and the executor over gRPC."""
    home = rustchain_home(environ)
    verifier_at = _endpoint("verifier", peers, home, environ)
    executor_at = _endpoint("executor", peers, home, environ)
    verifier_channel, executor_channel = open_channel(verifier_at), open_channel(executor_at)
    application = PlannerApplication(
        default_registry(),
        GrpcVerifier(verifier_channel, verifier_at),
        GrpcExecutor(executor_channel, executor_at),
    )
    servicer = PlannerServicer(application)
    return Hosted(
        [planner_binding(servicer)], closers=[verifier_channel.close, executor_channel.close]
    )


def host_trainer(environ: Mapping[str, str], peers: Mapping[str, str]) -> Hosted:
    """The trainer: its consumer turns finished missions into trajectories, served over gRPC."""
    url = deployment_nats_url(rustchain_home(environ), environ)
    if url is None:
        raise ServeError(f"the trainer reads JetStream: set {NATS_URL_VARIABLE}")
    store = SqliteTrajectoryStore(rustchain_home(environ) / "trainer.sqlite3")
    stop = asyncio.Event()
    consuming: list[asyncio.Task[None]] = []

    def start_consumer() -> None:
        consuming.append(asyncio.ensure_future(consume_until(url, store, stop)))

    async def stop_consumer() -> None:
        stop.set()
        await asyncio.gather(*consuming)

    return Hosted(
        [trainer_binding(TrainerServicer(store))],
        start_consumer,
        [_sync(store.close), stop_consumer],
    )


HOSTS: dict[str, Callable[[Mapping[str, str], Mapping[str, str]], Hosted]] = {
    "planner": host_planner,
    "verifier": host_verifier,
    "executor": host_executor,
    "memory": host_memory,
    "trainer": host_trainer,
}


async def serve(
    service: str,
    port: int,
    environ: Mapping[str, str],
    peers: Mapping[str, str],
    stop: asyncio.Event,
    announce: Callable[[int], None] = lambda port: None,
    host: str = LOOPBACK,
    say: Callable[[str], None] = lambda line: None,
) -> None:
    """Serve one service on host:port until `stop` is set; `announce` gets the port once bound,
    `say` the lines the service says about itself first."""
    home = rustchain_home(environ)
    tighten_home(home)
    # Every RPC is authenticated once the deployment has a token key (`rustchain up` makes one).
    key = token_public_key(home, environ)
    interceptors = [*server_interceptors(), *([AuthInterceptor(key)] if key is not None else [])]
    hosted = HOSTS[service](environ, peers)
    for line in hosted.lines:
        say(line)
    try:
        running = await start_server(
            hosted.bindings,
            port,
            host=host,
            interceptors=interceptors,
            max_request_bytes=max_message_bytes(environ),
        )
        try:
            hosted.on_started()
            announce(running.port)
            await stop.wait()
        finally:
            await running.stop()
    finally:
        await hosted.close()


async def _serve_until_signal(
    service: str, host: str, port: int, environ: Mapping[str, str], peers: Mapping[str, str]
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)

    def announce(bound: int) -> None:
        click.echo(f"rustchain {service} serving on {host}:{bound}")

    def say(line: str) -> None:
        click.echo(f"rustchain {service}: {line}")

    await serve(service, port, environ, peers, stop, announce, host, say)


@click.command(name="serve")
@click.argument("service", type=click.Choice(SERVICES))
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port; 0: any free one.")
@click.option(
    "--host",
    default=LOOPBACK,
    show_default=True,
    help="Address to listen on; 0.0.0.0 in a container, where probes and peers come from outside.",
)
@click.option("--verifier", metavar="HOST:PORT", help="The verifier (planner only).")
@click.option("--executor", metavar="HOST:PORT", help="The executor (planner only).")
@click.option("--memory", metavar="HOST:PORT", help="The memory service (executor only).")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    envvar="RUSTCHAIN_METRICS_PORT",
    help="Serve the metrics for Prometheus on this port (/metrics).",
)
def serve_command(
    service: str,
    port: int,
    host: str,
    verifier: str | None,
    executor: str | None,
    memory: str | None,
    metrics_port: int | None,
) -> None:
    """Serve one service over gRPC, with health checking and reflection, until stopped."""
    given = {"verifier": verifier, "executor": executor, "memory": memory}
    peers = {name: value for name, value in given.items() if value}
    try:
        with telemetry_for(service, metrics_port):
            asyncio.run(_serve_until_signal(service, host, port, dict(os.environ), peers))
    except (
        TelemetrySettingError,
        ServeError,
        EndpointsError,
        GrpcServerError,
        MessageLimitError,
        SigningKeyError,
    ) as error:
        click.echo(f"rustchain serve {service}: {error}", err=True)
        sys.exit(exit_codes.USAGE)
    except EventStoreError as error:
        click.echo(f"rustchain serve {service}: cannot open the event store: {error}", err=True)
        sys.exit(exit_codes.UNREACHABLE)
