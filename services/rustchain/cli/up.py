"""`rustchain up`: the embedded deployment on this machine, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from types import FrameType

import click

from rustchain.cli import exit_codes
from rustchain.platform.deployment.endpoints import (
    EndpointsError,
    endpoints_path,
    running_deployment,
)
from rustchain.platform.deployment.replicas import ReplicaCountError, check_executor_count
from rustchain.platform.deployment.supervisor import (
    SUPERVISE_INTERVAL,
    Deployment,
    DeploymentError,
)
from rustchain.platform.nats.cluster import ClusterSizeError, check_cluster_size
from rustchain.platform.nats.server import NatsServerError
from rustchain.platform.sandbox.selection import SandboxSettingError, choose_sandbox, describe
from rustchain.platform.storage.home import rustchain_home
from rustchain.platform.telemetry.setup import TelemetrySettingError, otlp_environ
from rustchain.steps.support.sandboxing import SANDBOX_SETTING


def _report(message: str) -> None:
    click.echo(f"rustchain up: {message}", err=True)


def _children_environ(otlp: str | None, executors: int) -> dict[str, str]:
    """The settings every child gets: this process's, the collector's, the sandbox probed here;
    a setting that cannot work ends the command with one line (exit 2)."""
    environ = dict(os.environ)
    try:
        check_executor_count(executors, environ)
        if otlp is not None:
            environ.update(otlp_environ(otlp))
        sandbox = choose_sandbox(environ)
    except (ReplicaCountError, TelemetrySettingError, SandboxSettingError) as error:
        _report(str(error))
        sys.exit(exit_codes.USAGE)
    click.echo(describe(sandbox))
    # The executor uses the mechanism probed here (it checks that one again, and only that one).
    environ[SANDBOX_SETTING] = sandbox.name.split()[0]
    return environ


@click.command()
@click.option(
    "--otlp",
    metavar="URL",
    help="Send every service's traces and metrics to this OTLP collector"
    " (sets OTEL_EXPORTER_OTLP_ENDPOINT for each; OTEL_EXPORTER_OTLP_PROTOCOL picks grpc or"
    " http/protobuf).",
)
@click.option(
    "--nats-cluster",
    "nats_cluster",
    type=int,
    default=1,
    show_default=True,
    metavar="N",
    help="Run N nats-servers (3 or 5) as one JetStream cluster, every stream kept on each"
    " (RUSTCHAIN_NATS_REPLICAS=N), so that losing one server loses no event.",
)
@click.option(
    "--executors",
    type=int,
    default=1,
    show_default=True,
    help="Executor processes; more than one needs PostgreSQL (RUSTCHAIN_DATABASE_URL), where"
    " mission leases decide which one drives each mission.",
)
def up(otlp: str | None, nats_cluster: int, executors: int) -> None:
    """Run nats-server and every service as separate processes on loopback until stopped."""
    try:
        check_cluster_size(nats_cluster)
    except ClusterSizeError as error:
        raise click.BadParameter(str(error), param_hint="--nats-cluster") from None
    stop = threading.Event()

    def on_signal(number: int, frame: FrameType | None) -> None:
        stop.set()

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, on_signal)
    home = rustchain_home()
    try:
        running = running_deployment(home)
    except EndpointsError:
        running = None
    if running is not None and running.pid is not None:
        _report(f"a deployment already runs on {home} (pid {running.pid}); stop it first")
        sys.exit(exit_codes.USAGE)
    environ = _children_environ(otlp, executors)
    deployment = Deployment(home, environ, _report, nats_cluster=nats_cluster, executors=executors)
    try:
        endpoints = deployment.up()
    except (DeploymentError, NatsServerError, OSError) as error:
        _report(str(error))
        deployment.down()
        sys.exit(exit_codes.UNREACHABLE)
    for name in endpoints.services:
        click.echo(f"{name:<9} {endpoints.target(name)}")
    click.echo(f"{'nats':<9} {endpoints.nats_url}")
    click.echo(f"endpoints written to {endpoints_path(home)}; Ctrl-C stops everything")
    try:
        while not stop.wait(SUPERVISE_INTERVAL):
            deployment.supervise_once(time.monotonic())
    finally:
        _report("stopping")
        deployment.down()
    click.echo("stopped")
