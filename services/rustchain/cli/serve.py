"""`rustchain serve SERVICE [--port P]`: one service in this process, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Mapping

import click

from rustchain.bootstrap.services import HOSTS, ServeError
from rustchain.cli import exit_codes
from rustchain.executor.workspace_snapshots import SnapshotSettingError
from rustchain.platform.credentials.signing_keys import SigningKeyError, token_public_key
from rustchain.platform.deployment.endpoints import SERVICES, EndpointsError
from rustchain.platform.grpc.auth import AuthInterceptor
from rustchain.platform.grpc.decoding import MessageLimitError, max_message_bytes
from rustchain.platform.grpc.server import LOOPBACK, GrpcServerError, start_server
from rustchain.platform.grpc.spreading import ReplicaListError
from rustchain.platform.storage.event_store import EventStoreError
from rustchain.platform.storage.home import rustchain_home
from rustchain.platform.storage.postgres_tables import PostgresUnavailableError
from rustchain.platform.storage.private_files import tighten_home
from rustchain.platform.telemetry.grpc_tracing import server_interceptors
from rustchain.platform.telemetry.process import telemetry_for
from rustchain.platform.telemetry.setup import TelemetrySettingError

__all__ = ["ServeError", "serve", "serve_command"]


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
@click.option(
    "--executor",
    metavar="HOST:PORT",
    help="The executor (planner only); several replicas as IP:PORT,IP:PORT,... or one"
    " dns:///NAME:PORT target, over which new missions are spread.",
)
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
        SnapshotSettingError,
        ReplicaListError,
    ) as error:
        click.echo(f"rustchain serve {service}: {error}", err=True)
        sys.exit(exit_codes.USAGE)
    except EventStoreError as error:
        click.echo(f"rustchain serve {service}: cannot open the event store: {error}", err=True)
        sys.exit(exit_codes.UNREACHABLE)
    except PostgresUnavailableError as error:
        click.echo(f"rustchain serve {service}: cannot open its tables: {error}", err=True)
        sys.exit(exit_codes.UNREACHABLE)
