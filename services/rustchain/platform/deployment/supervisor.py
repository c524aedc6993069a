"""The embedded deployment on one machine: nats-server and each service as its own process.

Every child is watched; one that dies is reported and started again (with a growing delay),
never hidden. Stopping stops the children in reverse order of their start.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2

from rustchain.platform.credentials.service_tokens import ServiceTokens
from rustchain.platform.deployment.endpoints import (
    PEERS,
    Endpoints,
    endpoints_path,
    write_endpoints,
)
from rustchain.platform.deployment.nats_nodes import NatsNodes
from rustchain.platform.deployment.replicas import EXECUTOR, executor_replicas
from rustchain.platform.grpc.server import LOOPBACK
from rustchain.platform.nats.auth_callout import callout_secrets
from rustchain.platform.nats.jetstream import (
    NatsCredentials,
    NatsPermissionError,
    NatsUnavailableError,
    connect,
)
from rustchain.platform.nats.server import NatsServerSettings, free_port

READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0
SUPERVISE_INTERVAL = 0.2
"""How often the supervisor looks at its children (the period of a polling loop)."""
START_ORDER = ("verifier", "memory", "executor", "planner", "trainer")
RELAYED_STORES = ("verifier", "executor")
Report = Callable[[str], None]
HEALTH_CHECK = "/grpc.health.v1.Health/Check"


class DeploymentError(RuntimeError):
    """The deployment could not be brought up; the message names the part that failed."""


@dataclass
class Child:
    """One supervised process: how to start it, where it logs, how often it was restarted."""

    name: str
    argv: list[str]
    log_path: Path
    endpoint: str | None = None
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    restarts: int = 0
    restart_at: float | None = None
    renew_at: float | None = None
    """When (wall clock) its token is due for renewal: it is then restarted with a new one."""
    own_environ: dict[str, str] = field(default_factory=dict)
    """Settings of this child alone (an executor replica's id)."""

    def start(self, environ: Mapping[str, str]) -> None:
        """Start the process, its output appended to its log."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            env={**environ, **self.own_environ},
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def exit_code(self) -> int | None:
        """The exit code once it has ended, else None."""
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """SIGTERM, then SIGKILL if it has not stopped in time."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log is not None:
            self.log.close()
            self.log = None


def wait_serving(endpoint: str, name: str, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Return once the service at `endpoint` reports SERVING, or raise DeploymentError."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(endpoint) as channel:
        # The typing stubs of grpcio-health-checking omit HealthStub's methods: call it by path.
        check = channel.unary_unary(
            HEALTH_CHECK,
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        while time.monotonic() < deadline:
            try:
                reply = check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(SUPERVISE_INTERVAL)  # polling interval of a bounded wait for readiness
    raise DeploymentError(f"the {name} service at {endpoint} did not become ready in {timeout:g} s")


def wait_admitting(url: str, token: str, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Return once NATS admits the token (its auth callout answers), or raise DeploymentError."""

    async def admitted() -> bool:
        try:
            client = await connect(url, credentials=NatsCredentials.of_token(token))
        except (NatsPermissionError, NatsUnavailableError):
            return False
        await client.close()
        return True

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if asyncio.run(admitted()):
            return
        time.sleep(SUPERVISE_INTERVAL)  # polling interval of a bounded wait for readiness
    raise DeploymentError(f"NATS at {url} did not admit the admin token in {timeout:g} s")


def _serve_argv(service: str, port: int, peers: Mapping[str, str]) -> list[str]:
    argv = [sys.executable, "-m", "rustchain", "serve", service, "--port", str(port)]
    for peer in PEERS.get(service, ()):
        argv += [f"--{peer}", peers[peer]]
    return argv


@dataclass(frozen=True)
class _Launch:
    """A service process to start: which service, where, under which name and settings."""

    service: str
    endpoint: str
    name: str | None = None
    own_environ: Mapping[str, str] = field(default_factory=dict)

    @property
    def child_name(self) -> str:
        return self.name or self.service


@dataclass
class Deployment:
    """nats-server, the services and their event relays, under one home."""

    home: Path
    environ: Mapping[str, str]
    report: Report
    nats_cluster: int = 1
    """How many nats-servers: 1, or a JetStream cluster of 3 or 5 (R3/R5 streams)."""
    nats: NatsNodes | None = None
    children: list[Child] = field(default_factory=list)
    tokens: ServiceTokens | None = None
    executors: int = 1
    """Executor processes (several only on PostgreSQL: platform/deployment/replicas.py)."""

    def up(self) -> Endpoints:
        """Start everything, wait until each service serves, write endpoints.json."""
        # The keys, the CLI's admin token and the stores first: each change is said.
        self.tokens = ServiceTokens.prepare(self.home, self.environ, self.report)
        # Every NATS connection is authorised by its token, by the auth callout child below.
        callout = callout_secrets(self.home, create=True)
        settings = NatsServerSettings.from_environ(self.home, self.environ, callout=callout)
        self.nats = NatsNodes(settings, self.nats_cluster)
        self.nats.start()
        self.environ = {**self.environ, "RUSTCHAIN_HOME": str(self.home), **self.nats.environ()}
        logs = self.home / "logs"
        argv = [sys.executable, "-m", "rustchain", "events", "auth-callout"]
        self._start(Child("nats-auth", argv, logs / "nats-auth.log"))
        wait_admitting(self.nats.url, self.tokens.probe_token())
        endpoints = {name: f"{LOOPBACK}:{free_port()}" for name in START_ORDER}
        replicas = executor_replicas(
            [endpoints[EXECUTOR], *(f"{LOOPBACK}:{free_port()}" for _ in range(self.executors - 1))]
        )
        # Peers reach every executor replica through one spreading channel.
        peers = {**endpoints, EXECUTOR: ",".join(replica.endpoint for replica in replicas)}
        executors = [_Launch(EXECUTOR, r.endpoint, r.name, r.environ()) for r in replicas]
        service = {name: _Launch(name, endpoints[name]) for name in START_ORDER}
        # Each phase starts at once and is waited for together (channels connect lazily). The
        # executors make the trainer's event store before the trainer opens it: a store's first
        # opening is not safe against a concurrent one on SQLite (on PostgreSQL the replicas'
        # openings take turns under the database's schema lock).
        phases = [
            [service["verifier"], service["memory"], *executors],
            [service["planner"], service["trainer"]],
        ]
        for phase in phases:
            for launch in phase:
                self._start_service(launch, peers)
            for launch in phase:
                wait_serving(launch.endpoint, launch.child_name)
        for store in RELAYED_STORES:
            argv = [sys.executable, "-m", "rustchain", "events", "relay", "--store", store]
            self._start(Child(f"relay-{store}", argv, logs / f"relay-{store}.log"))
        listed = {EXECUTOR: [r.endpoint for r in replicas]} if len(replicas) > 1 else {}
        result = Endpoints(endpoints, self.nats.url, os.getpid(), listed)
        write_endpoints(self.home, result)
        return result

    def _start_service(self, launch: _Launch, peers: Mapping[str, str]) -> None:
        port = int(launch.endpoint.rpartition(":")[2])
        log = self.home / "logs" / f"{launch.child_name}.log"
        child = Child(launch.child_name, _serve_argv(launch.service, port, peers), log)
        child.endpoint = launch.endpoint
        child.own_environ = dict(launch.own_environ)
        self._start(child)

    def _start(self, child: Child) -> None:
        assert self.tokens is not None, "up() prepares the tokens before any child starts"
        environ, child.renew_at = self.tokens.environ_for(child.name, self.environ)
        child.start(environ)
        if child not in self.children:
            self.children.append(child)

    def renew_tokens(self, wall_now: float) -> None:
        """Restart each child whose token is due for renewal with a new one; renew admin.token."""
        if self.tokens is None:
            return
        self.tokens.renew_admin_token(wall_now)
        for child in self.children:
            due = child.renew_at is not None and wall_now >= child.renew_at
            if due and child.restart_at is None and child.exit_code() is None:
                self.report(
                    f"{child.name}'s token is due for renewal: restarting it with a new one"
                )
                child.stop()
                self._start(child)

    def supervise_once(self, now: float) -> None:
        """Report and restart whatever has died since the last look."""
        self.renew_tokens(time.time())
        if self.nats is not None:
            self.nats.restart_dead(self.report)
        for child in self.children:
            code = child.exit_code()
            if code is not None and child.restart_at is None:
                delay = min(FIRST_RESTART_DELAY * 2**child.restarts, MAX_RESTART_DELAY)
                self.report(
                    f"{child.name} exited with code {code} (see {child.log_path});"
                    f" restarting in {delay:g} s"
                )
                child.stop()
                child.restart_at = now + delay
            elif child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                child.restart_at = None
                self._start(child)
                self.report(
                    f"{child.name} restarted (pid {child.process.pid if child.process else '?'})"
                )

    def down(self) -> None:
        """Stop the children in reverse order, then nats-server; remove endpoints.json."""
        endpoints_path(self.home).unlink(missing_ok=True)
        for child in reversed(self.children):
            child.stop()
        if self.nats is not None:
            self.nats.stop()
