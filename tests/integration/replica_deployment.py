"""Several executor processes on one fresh PostgreSQL database, for the scale-out tests and bench.

`rustchain up --executors N` runs the deployment as a user would; the missions' steps append a
line to a ledger file in their workspace (the non-idempotent side effect that must never repeat),
after a short pause so that a replica can be killed, paused or cut off in the middle of a step.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psycopg
from psycopg.rows import dict_row

from rustchain.generated.rustchain.executor.v1 import executor_pb2, executor_pb2_grpc
from rustchain.generated.rustchain.planner.v1 import planner_pb2, planner_pb2_grpc
from rustchain.platform.grpc.client import open_channel
from tests.conditions import wait_until_sync
from tests.integration.conftest import postgres_url

TENANT = "acme"
UP_TIMEOUT_SECONDS = 90.0
LEDGER = "ledger.txt"
AUDIT_ARGUMENTS = ("--tenant", TENANT, "--no-jetstream")
# The tenant may run `sh`, so that a step can pause and then append to its ledger.
LEDGER_POLICY = """\
commands:
  allowed_programs: [sh]
  unmodelled_programs: [sh]
  denied_arguments: []
"""


def ledger_mission(steps: int, pause_seconds: float, idempotent: bool = False) -> str:
    """A mission of `steps` steps in a chain (not idempotent unless said), each pausing then
    appending a line."""
    lines = ['version: "1.0"', "name: ledger", "steps:"]
    for number in range(1, steps + 1):
        after = f"\n    depends_on: [s{number - 1}]" if number > 1 else ""
        script = f"sleep {pause_seconds}; echo s{number} >> {LEDGER}"
        lines.append(
            f"  - id: s{number}\n    name: step {number}\n    step_type: command{after}\n"
            f"    retry: {{idempotent: {str(idempotent).lower()}}}\n"
            f"    parameters: {{command: sh, args: ['-c', {script!r}]}}"
        )
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new database `rc_<uuid>` on the test server, dropped afterwards."""
    server = postgres_url()
    name = f"rc_{uuid.uuid4().hex}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    try:
        yield re.sub(r"/[^/]*$", f"/{name}", server)
    finally:
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def process_environ(home: Path, database_url: str, **settings: str) -> dict[str, str]:
    """This process's environment for a deployment in `home` on `database_url`."""
    environ = {**os.environ, "RUSTCHAIN_HOME": str(home), "RUSTCHAIN_DATABASE_URL": database_url}
    for name in ("RUSTCHAIN_ENDPOINT", "NATS_URL", "RUSTCHAIN_TOKEN", "RUSTCHAIN_EXECUTOR_ID"):
        environ.pop(name, None)
    return {**environ, **settings}


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM (and SIGCONT, should it be paused), then SIGKILL if it has not ended in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class UpDeployment:
    """`rustchain up --executors N` on a database, until stopped."""

    home: Path
    database_url: str
    executors: int
    settings: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.home.parent / "up.log"

    def start(self) -> UpDeployment:
        """Start it and return once endpoints.json is written (every service serves)."""
        (self.home / "policies").mkdir(parents=True, exist_ok=True)
        (self.home / "policies" / f"{TENANT}.yaml").write_text(LEDGER_POLICY)
        self.log = self.log_path.open("wb")
        environ = self.environ(**self.settings)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rustchain", "up", "--executors", str(self.executors)],
            env=environ,
            stdout=self.log,
            stderr=self.log,
        )
        wait_until_sync(self._written, UP_TIMEOUT_SECONDS, "rustchain up wrote endpoints.json")
        return self

    def _written(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"rustchain up ended: {self.log_path.read_text()}")
        return (self.home / "endpoints.json").is_file()

    def environ(self, **settings: str) -> dict[str, str]:
        return process_environ(self.home, self.database_url, **settings)

    def stop(self) -> None:
        if self.process is not None:
            # A paused replica would hold the supervisor's stop up: let it go on first.
            with contextlib.suppress(OSError, ValueError):
                for pid in self.executor_pids().values():
                    os.kill(pid, signal.SIGCONT)
            stop_process(self.process, UP_TIMEOUT_SECONDS)
        if self.log is not None:
            self.log.close()

    @property
    def endpoints(self) -> dict[str, object]:
        document: dict[str, object] = json.loads((self.home / "endpoints.json").read_text())
        return document

    def service(self, name: str) -> str:
        services = self.endpoints["services"]
        assert isinstance(services, dict)
        return str(services[name])

    def replicas(self) -> list[str]:
        replicas = self.endpoints.get("replicas") or {"executor": [self.service("executor")]}
        assert isinstance(replicas, dict)
        return [str(endpoint) for endpoint in replicas["executor"]]

    @property
    def token(self) -> str:
        return (self.home / "admin.token").read_text().strip()

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-rustchain-tenant", TENANT), ("authorization", f"Bearer {self.token}"))

    def executor_pids(self) -> dict[str, int]:
        """The running executor replicas' pids by replica name (executor-1, ...)."""
        if self.process is None:
            return {}
        found = subprocess.run(
            ["pgrep", "-a", "-P", str(self.process.pid)],
            capture_output=True,
            text=True,
            check=False,
        )
        ports = {endpoint.rpartition(":")[2]: n for n, endpoint in enumerate(self.replicas(), 1)}
        pids: dict[str, int] = {}
        for line in found.stdout.splitlines():
            pid, _, command = line.partition(" ")
            port = re.search(r"serve executor --port (\d+)", command)
            if port is not None and port.group(1) in ports:
                pids[f"executor-{ports[port.group(1)]}"] = int(pid)
        return pids

    def replica_log(self, name: str) -> str:
        return (self.home / "logs" / f"{name}.log").read_text()

    @contextlib.contextmanager
    def explained(self) -> Iterator[None]:
        """A failed assertion inside carries the deployment's state: what a chaos test that
        failed once in CI needs to be understood without a rerun."""
        try:
            yield
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.diagnosis()}") from error

    def diagnosis(self) -> str:
        """The unfinished leases, this database's sessions (who waits on what) and the ends of
        the logs."""
        lines = ["unfinished leases (mission, owner, epoch, seconds left):"]
        try:
            with psycopg.connect(self.database_url, row_factory=dict_row) as connection:
                for row in connection.execute(
                    "SELECT mission_id, owner, epoch,"
                    " extract(epoch FROM expires_at - clock_timestamp()) AS left"
                    " FROM executor_leases WHERE NOT finished ORDER BY owner, mission_id"
                ):
                    lines.append(
                        f"  {row['mission_id']} {row['owner']} {row['epoch']} {row['left']:.1f}"
                    )
                lines.append("sessions (application, port, state, wait, transaction age, query):")
                for row in connection.execute(
                    "SELECT application_name, client_port, state, wait_event_type, wait_event,"
                    " extract(epoch FROM clock_timestamp() - xact_start) AS age,"
                    " left(query, 100) AS query FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " ORDER BY application_name, client_port"
                ):
                    age = "-" if row["age"] is None else f"{row['age']:.1f}s"
                    lines.append(
                        f"  {row['application_name']} {row['client_port']} {row['state']}"
                        f" {row['wait_event_type']}:{row['wait_event']} {age} {row['query']!r}"
                    )
                total = connection.execute("SELECT count(*) AS n FROM pg_stat_activity").fetchone()
                lines.append(f"sessions on the server: {total['n'] if total else '?'}")
        except psycopg.Error as error:
            lines.append(f"  (the database could not be read: {error})")
        logs = [self.log_path, *sorted((self.home / "logs").glob("*.log"))]
        for path in logs:
            if path.is_file():
                tail = path.read_text(errors="replace").splitlines()[-25:]
                lines += [f"--- {path.name} (last {len(tail)} lines)", *tail]
        return "\n".join(lines)


async def submit_missions(deployment: UpDeployment, text: str, count: int) -> list[str]:
    """Submit `count` copies of the mission to the planner at once; their ids."""
    planner_at = deployment.service("planner")
    async with open_channel(planner_at) as channel:
        planner = planner_pb2_grpc.PlannerServiceStub(channel)
        request = planner_pb2.SubmitMissionRequest(yaml=text, file_name="ledger.yaml")
        replies = await asyncio.gather(
            *(
                planner.SubmitMission(request, metadata=deployment.metadata(), timeout=120)
                for _ in range(count)
            )
        )
    refused = [list(r.diagnostics) for r in replies if not r.accepted]
    assert not refused, refused
    return [reply.mission_id for reply in replies]


async def summaries(
    executors: str, metadata: tuple[tuple[str, str], ...], missions: list[str]
) -> list[executor_pb2.MissionSummary]:
    """Each mission's state, asked of whichever replica the channel picks."""
    async with open_channel(executors) as channel:
        executor = executor_pb2_grpc.ExecutorServiceStub(channel)
        return [
            await executor.GetMission(
                executor_pb2.GetMissionRequest(mission_id=mission), metadata=metadata, timeout=30
            )
            for mission in missions
        ]


@dataclass(frozen=True)
class LeaseRow:
    owner: str | None
    epoch: int
    finished: bool


def leases(database_url: str) -> dict[str, LeaseRow]:
    """The executor store's mission leases, by mission id."""
    with psycopg.connect(database_url, row_factory=dict_row) as connection:
        rows = connection.execute(
            "SELECT mission_id, owner, epoch, finished FROM executor_leases"
        ).fetchall()
    return {r["mission_id"]: LeaseRow(r["owner"], r["epoch"], r["finished"]) for r in rows}


def held_by(database_url: str, owner: str) -> dict[str, LeaseRow]:
    """The unfinished missions whose lease `owner` holds."""
    return {m: r for m, r in leases(database_url).items() if r.owner == owner and not r.finished}


def all_finished(database_url: str, missions: list[str]) -> bool:
    rows = leases(database_url)
    return all(mission in rows and rows[mission].finished for mission in missions)


def ledger_runs(summary: executor_pb2.MissionSummary) -> list[str]:
    """The lines a mission's steps appended, one per run of a step's effect."""
    path = Path(summary.workspace) / LEDGER
    return path.read_text().split() if path.exists() else []


def check_each_effect_once(found: list[executor_pb2.MissionSummary]) -> dict[str, int]:
    """Assert no step's line was written twice and every succeeded step's line is there; count
    the missions by status."""
    statuses: dict[str, int] = {}
    for summary in found:
        assert summary.status in ("succeeded", "failed"), (summary.mission_id, summary.status)
        statuses[summary.status] = statuses.get(summary.status, 0) + 1
        runs = ledger_runs(summary)
        assert len(runs) == len(set(runs)), f"{summary.mission_id} ran a step twice: {runs}"
        for step in summary.steps:
            if step.status == "succeeded":
                assert runs.count(step.id) == 1, (summary.mission_id, step.id, runs)
            elif step.status == "failed":
                assert "not marked idempotent" in step.error, (summary.mission_id, step.error)
    return statuses


def audit_verify(home: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    """`rustchain audit verify --tenant acme` on the stores (JetStream not compared)."""
    return subprocess.run(
        [sys.executable, "-m", "rustchain", "audit", "verify", *AUDIT_ARGUMENTS],
        env=process_environ(home, database_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
