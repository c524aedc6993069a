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
from rustchain.platform.nats.server import NatsServerError
from rustchain.platform.sandbox.selection import SandboxSettingError, choose_sandbox, describe
from rustchain.platform.storage.home import rustchain_home
from rustchain.platform.telemetry.setup import TelemetrySettingError, otlp_environ
from rustchain.steps.support.sandboxing import SANDBOX_SETTING


def _report(message: str) -> None:
    click.echo(f"rustchain up: {message}", err=True)


@click.command()
@click.option(
    "--otlp",
    metavar="URL",
    help="Send every service's traces and metrics to this OTLP collector"
    " (sets OTEL_EXPORTER_OTLP_ENDPOINT for each; OTEL_EXPORTER_OTLP_PROTOCOL picks grpc or"
    " http/protobuf).",
)
@click.option(
    "--executors",
    type=int,
    default=1,
    show_default=True,
    help="Executor processes; more than one needs PostgreSQL (RUSTCHAIN_DATABASE_URL), where"
    " mission leases decide which one drives each mission.",
)
def up(otlp: str | None, executors: int) -> None:
    """Run nats-server and every service as separate processes on loopback until stopped."""
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
    environ = dict(os.environ)
    try:
        check_executor_count(executors, environ)
    except ReplicaCountError as error:
        _report(str(error))
        sys.exit(exit_codes.USAGE)
    if otlp is not None:
        try:
            environ.update(otlp_environ(otlp))
        except TelemetrySettingError as error:
            _report(str(error))
            sys.exit(exit_codes.USAGE)
    try:
        sandbox = choose_sandbox(environ)
    except SandboxSettingError as error:
        _report(str(error))
        sys.exit(exit_codes.USAGE)
    click.echo(describe(sandbox))
    # The executor uses the mechanism probed here (it checks that one again, and only that one).
    environ[SANDBOX_SETTING] = sandbox.name.split()[0]
    deployment = Deployment(home, environ, _report, executors=executors)
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
