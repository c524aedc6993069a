"""Several executor processes on one PostgreSQL database (issue 15): missions per second with 1, 2
and 3 executors side by side (200 concurrent 3-step missions started through one round-robin
channel over the replicas), and the time from an executor's SIGKILL to the next step of its
missions on another replica (goal: under the lease period + 1 s), and the PostgreSQL sessions the
replicas hold at rest and at peak, beside what they held at rest with eventsourcing's default pool
of 5 per store.

Real `rustchain serve executor` processes, each on a fresh database `rc_<uuid>` of the server of
RUSTCHAIN_TEST_POSTGRES_URL (default 127.0.0.1:5432/test), dropped afterwards. Steps are `noop`s,
so the figures are the executor's own cost (store appends, leases, fences), not the steps'.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from tests.conditions import wait_until_sync

from rustchain.domain.plans.compiler import compile_mission
from rustchain.generated.rustchain.executor.v1 import executor_pb2, executor_pb2_grpc
from rustchain.platform.deployment.supervisor import wait_serving
from rustchain.platform.grpc.client import open_channel
from rustchain.platform.grpc.server import LOOPBACK
from rustchain.platform.nats.server import free_port
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.steps import default_registry

URL = os.environ.get("RUSTCHAIN_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test"
TENANT = "default"
MISSIONS = 200
REPLICA_COUNTS = (1, 2, 3)
ROUNDS = 2
LEASE_SECONDS = 2.0
TAKEOVER_MISSIONS = 30
TAKEOVER_STEPS = 300
TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 0.02
EVENTSOURCING_POOL_SIZE = 5
SETTLE_SECONDS = 1.0
SERVE_EXECUTOR = (sys.executable, "-m", "rustchain", "serve", "executor")


def _chain(steps: int) -> str:
    """A mission of `steps` idempotent noops in a chain (a takeover retries the one running)."""
    lines = ['version: "1.0"', "name: chain", "steps:"]
    for n in range(1, steps + 1):
        after = f", depends_on: [s{n - 1}]" if n > 1 else ""
        lines.append(f"  - {{id: s{n}, step_type: noop, retry: {{idempotent: true}}{after}}}")
    return "\n".join(lines) + "\n"


def _plan_json(steps: int) -> str:
    plan = compile_mission(_chain(steps).encode(), "chain.yaml", default_registry()).plan
    assert plan is not None, "the bench's mission compiles"
    return plan.to_json()


@contextlib.contextmanager
def _database() -> Iterator[str]:
    name = f"rc_{uuid.uuid4().hex}"
    with psycopg.connect(URL, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    try:
        yield re.sub(r"/[^/]*$", f"/{name}", URL)
    finally:
        with psycopg.connect(URL, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@dataclass
class Replicas:
    """N executor processes on one home and database."""

    home: Path
    database_url: str
    processes: dict[str, subprocess.Popen[bytes]]
    endpoints: list[str]

    @classmethod
    @contextlib.contextmanager
    def run(cls, count: int, database_url: str, pool_size: int = 0) -> Iterator[Replicas]:
        with tempfile.TemporaryDirectory() as scratch:
            home = Path(scratch)
            environ = {**os.environ, "RUSTCHAIN_HOME": str(home)}
            for name in ("RUSTCHAIN_ENDPOINT", "NATS_URL", "RUSTCHAIN_TOKEN"):
                environ.pop(name, None)
            environ |= {
                "RUSTCHAIN_DATABASE_URL": database_url,
                "RUSTCHAIN_LEASE_SECONDS": str(LEASE_SECONDS),
                "RUSTCHAIN_EXECUTOR_CAPACITY": str(MISSIONS),
            }
            if pool_size:
                environ["RUSTCHAIN_DATABASE_POOL_SIZE"] = str(pool_size)
            processes: dict[str, subprocess.Popen[bytes]] = {}
            endpoints: list[str] = []
            try:
                for number in range(1, count + 1):
                    port = free_port()
                    name = f"executor-{number}"
                    processes[name] = subprocess.Popen(
                        [*SERVE_EXECUTOR, "--port", str(port)],
                        env={**environ, "RUSTCHAIN_EXECUTOR_ID": name},
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    endpoints.append(f"{LOOPBACK}:{port}")
                for name, endpoint in zip(processes, endpoints, strict=True):
                    wait_serving(endpoint, name)
                yield cls(home, database_url, processes, endpoints)
            finally:
                for process in processes.values():
                    if process.poll() is None:
                        process.terminate()
                for process in processes.values():
                    try:
                        process.wait(30)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()

    async def start(self, plan_json: str, count: int) -> list[str]:
        """Start `count` missions at once through one channel over every replica."""
        async with open_channel(",".join(self.endpoints)) as channel:
            executor = executor_pb2_grpc.ExecutorServiceStub(channel)
            request = executor_pb2.StartMissionRequest(plan_json=plan_json, variables_json="{}")
            metadata = (("x-rustchain-tenant", TENANT),)
            replies = await asyncio.gather(
                *(executor.StartMission(request, metadata=metadata) for _ in range(count))
            )
        return [reply.mission_id for reply in replies]

    def leases(self) -> list[tuple[str, str | None, bool]]:
        with psycopg.connect(self.database_url) as connection:
            rows = connection.execute(
                "SELECT mission_id, owner, finished FROM executor_leases"
            ).fetchall()
        return [(str(m), o, bool(f)) for m, o, f in rows]

    def sessions(self) -> int:
        """The database's sessions other than this query's own: the replicas'."""
        with psycopg.connect(self.database_url) as connection:
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
        return int(row[0]) if row else 0

    def settled_sessions(self) -> int:
        """The sessions once the count has held for SETTLE_SECONDS: pools open their idle
        sessions in the background, after the replica already serves."""
        deadline = time.monotonic() + TIMEOUT_SECONDS
        count, since = self.sessions(), time.monotonic()
        while time.monotonic() - since < SETTLE_SECONDS and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS * 5)  # polling interval of a bounded wait
            now = self.sessions()
            if now != count:
                count, since = now, time.monotonic()
        return count


@dataclass
class Throughput:
    """One run of MISSIONS missions: their rate, and the replicas' sessions at rest and at peak."""

    missions_per_second: float
    sessions_at_rest: int
    sessions_at_peak: int


def _missions_per_second(count: int) -> Throughput:
    plan = _plan_json(3)
    with _database() as url, Replicas.run(count, url) as replicas:
        at_rest = peak = replicas.settled_sessions()
        began = time.monotonic()
        missions = set(asyncio.run(replicas.start(plan, MISSIONS)))

        def all_finished() -> bool:
            nonlocal peak
            peak = max(peak, replicas.sessions())
            done = {m for m, _, finished in replicas.leases() if finished}
            return missions <= done

        wait_until_sync(
            all_finished, TIMEOUT_SECONDS, f"{MISSIONS} missions finished on {count} executor(s)"
        )
        return Throughput(MISSIONS / (time.monotonic() - began), at_rest, peak)


def _sessions_at_rest(count: int, pool_size: int) -> int:
    with _database() as url, Replicas.run(count, url, pool_size) as replicas:
        return replicas.settled_sessions()


def _takeover_seconds() -> list[float]:
    """Seconds from SIGKILL of executor-1 to the next event of each mission it drove."""
    plan = _plan_json(TAKEOVER_STEPS)
    with _database() as url, Replicas.run(3, url) as replicas:
        asyncio.run(replicas.start(plan, TAKEOVER_MISSIONS))

        def victim_drives() -> bool:
            return any(o == "executor-1" and not f for _, o, f in replicas.leases())

        wait_until_sync(victim_drives, TIMEOUT_SECONDS, "executor-1 drives a mission")
        held = [m for m, o, f in replicas.leases() if o == "executor-1" and not f]
        replicas.processes["executor-1"].kill()
        killed_at = datetime.now(UTC)
        store = open_event_store(EventStoreSettings("executor", replicas.home, database_url=url))
        next_step: dict[str, float] = {}
        try:

            def resumed() -> bool:
                for mission in held:
                    if mission in next_step:
                        continue
                    later = [
                        e.occurred_at
                        for e in store.mission_events(TENANT, mission)
                        if e.occurred_at > killed_at
                    ]
                    if later:
                        next_step[mission] = (min(later) - killed_at).total_seconds()
                return len(next_step) == len(held)

            wait_until_sync(resumed, TIMEOUT_SECONDS, "executor-1's missions went on elsewhere")
        finally:
            store.close()
        return sorted(next_step.values())


def main() -> None:
    """Print missions per second for 1, 2, 3 executors, and the takeover time after a SIGKILL."""
    # Best of ROUNDS, the counts interleaved: other work on the machine skews single runs.
    rates = dict.fromkeys(REPLICA_COUNTS, 0.0)
    sessions: dict[int, tuple[int, int]] = {}
    for _ in range(ROUNDS):
        for count in REPLICA_COUNTS:
            run = _missions_per_second(count)
            rates[count] = max(rates[count], run.missions_per_second)
            rest, peak = sessions.get(count, (0, 0))
            sessions[count] = (max(rest, run.sessions_at_rest), max(peak, run.sessions_at_peak))
    before = {count: _sessions_at_rest(count, EVENTSOURCING_POOL_SIZE) for count in REPLICA_COUNTS}
    takeover = _takeover_seconds()
    where = URL.rsplit("@", 1)[-1]
    print(
        f"PostgreSQL at {where} (same machine), {os.cpu_count()} cores, noop steps,"
        f" best of {ROUNDS}"
    )
    print(f"{MISSIONS} concurrent 3-step missions, started round-robin over the replicas")
    print(f"{'executors':<12}" + "".join(f"{count:>10}" for count in rates))
    print(f"{'missions/s':<12}" + "".join(f"{rate:>10.1f}" for rate in rates.values()))
    print("PostgreSQL sessions of the replicas (RUSTCHAIN_DATABASE_POOL_SIZE 2 per store):")
    print(f"{'  at rest':<12}" + "".join(f"{sessions[c][0]:>10}" for c in REPLICA_COUNTS))
    print(f"{'  at peak':<12}" + "".join(f"{sessions[c][1]:>10}" for c in REPLICA_COUNTS))
    print(
        f"{'  pool 5':<12}"
        + "".join(f"{before[c]:>10}" for c in REPLICA_COUNTS)
        + "  (at rest, eventsourcing's default pool: the baseline)"
    )
    print(
        f"SIGKILL of 1 of 3 executors -> next step of its {len(takeover)} missions elsewhere:"
        f" median {statistics.median(takeover):.2f} s, max {max(takeover):.2f} s"
        f" (lease {LEASE_SECONDS:g} s; goal under {LEASE_SECONDS + 1:g} s)"
    )


if __name__ == "__main__":
    main()
