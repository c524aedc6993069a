"""The lease's cost per step on PostgreSQL (issue 15): the same missions driven with the
store's shared leases (each append checks the lease in its transaction) and with the
one-process leases (no check), side by side; one heartbeat's renewal of many leases; and the
takeover: from the moment a replica's heartbeat stops (mid-step) to the mission's next fact,
recorded by another replica, in one process (the multi-process SIGKILL figure is `rustchain up`'s).

Needs the PostgreSQL server of RUSTCHAIN_TEST_POSTGRES_URL (default 127.0.0.1:5432/test);
its tables are made for the run and dropped after.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from pydantic import BaseModel, ConfigDict
from tests.conditions import wait_until

from bench.bench_executor import REGISTRY, chain_plan
from rustchain.bootstrap.executor import build_executor
from rustchain.domain.access.quotas import TenantQuotas
from rustchain.domain.language.step_types import StepTypeRegistry
from rustchain.executor.admission import StartMission
from rustchain.executor.driver import MissionDriver
from rustchain.platform.storage.event_store import (
    EventStoreSettings,
    RecorderEventStore,
    open_event_store,
)
from rustchain.platform.storage.lease_fence import Lease
from rustchain.platform.storage.mission_leases import (
    LocalMissionLeases,
    MissionLeases,
    PostgresMissionLeases,
    ReplicaSettings,
)
from rustchain.steps.support.runtime import StepContext

URL = os.environ.get("RUSTCHAIN_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test"
CHAIN = 150
MISSIONS = 50
HEARTBEAT_LEASES = 200
ROUNDS = 2
TAKEOVER_LEASE_SECONDS = 2.0
REPLICA = ReplicaSettings("bench", lease_seconds=30.0, capacity=1_000)


def _drive(home: Path, leased: bool, missions: int) -> float:
    """Seconds per step for `missions` 3-step missions (or one CHAIN-step mission) started and
    driven together by one MissionDriver, on fresh tables (a start reads the store's log)."""
    name = f"bench{uuid.uuid4().hex[:10]}"
    store = open_event_store(EventStoreSettings(name=name, home=home, database_url=URL))
    try:
        leases: MissionLeases = (
            PostgresMissionLeases(store, REPLICA) if leased else LocalMissionLeases(REPLICA)
        )
        return _driven(home, store, leases, missions)
    finally:
        store.close()
        _drop(name)


def _driven(home: Path, store: RecorderEventStore, leases: MissionLeases, missions: int) -> float:
    quotas = TenantQuotas(max_concurrent_missions=max(missions, 1))
    application = build_executor(
        {"RUSTCHAIN_HOME": str(home)}, store, registry=REGISTRY, quotas=quotas, leases=leases
    )
    driver = MissionDriver(application)
    steps = CHAIN if missions == 1 else 3
    plan = chain_plan(steps)

    async def run() -> float:
        started = time.perf_counter()
        ids = [await driver.start(StartMission("bench", plan)) for _ in range(missions)]
        runs = await asyncio.gather(*(driver.finished("bench", m) for m in ids))
        elapsed = time.perf_counter() - started
        await driver.stop()
        assert all(run.outcome == "succeeded" for run in runs)
        return elapsed / (missions * steps)

    return asyncio.run(run())


def _heartbeat(store: RecorderEventStore) -> float:
    """Seconds for one renewal of HEARTBEAT_LEASES leases."""
    leases = PostgresMissionLeases(store, REPLICA)
    held = [Lease("beat", f"m{n}", REPLICA.owner, 1) for n in range(HEARTBEAT_LEASES)]
    leases.adopt((lease.tenant, lease.mission_id) for lease in held)
    taken = [leases.take(lease.tenant, lease.mission_id) for lease in held]
    started = time.perf_counter()
    kept = leases.renew(lease for lease in taken if lease is not None)
    elapsed = time.perf_counter() - started
    assert len(kept) == HEARTBEAT_LEASES
    return elapsed


class _Anything(BaseModel):
    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class _Stuck:
    """A `noop` whose runner never returns: the replica stops in the middle of the step."""

    name: str = "noop"
    summary: str = "never ends"
    parameters: type[BaseModel] = _Anything

    async def run(self, params: BaseModel, context: StepContext) -> Any:
        """Wait forever."""
        await asyncio.Event().wait()


class _Stopped:
    """Leases whose heartbeat stops reaching the database once `stopped` (a killed replica)."""

    def __init__(self, leases: MissionLeases) -> None:
        self._leases = leases
        self.stopped = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._leases, name)

    def renew(self, leases: Iterable[Lease]) -> set[Lease]:
        """The real renewal until stopped."""
        if self.stopped:
            raise ConnectionError("stopped")
        return self._leases.renew(leases)


def _takeover(home: Path, store: RecorderEventStore) -> float:
    """Seconds from a replica's heartbeat stopping mid-step to another's first fact of the
    mission (the interrupted step's fate: retried when idempotent, else failed)."""
    # The stopped replica's failing renewals are the scenario, not news.
    logging.getLogger("rustchain.executor.driver").setLevel(logging.CRITICAL)
    replica = ReplicaSettings("stopping", lease_seconds=TAKEOVER_LEASE_SECONDS)
    environ = {"RUSTCHAIN_HOME": str(home)}
    leases = _Stopped(PostgresMissionLeases(store, replica))
    stuck = StepTypeRegistry.of([_Stuck()], {})
    first = MissionDriver(build_executor(environ, store, registry=stuck, leases=leases))
    other = ReplicaSettings("successor", lease_seconds=TAKEOVER_LEASE_SECONDS)
    second = MissionDriver(
        build_executor(
            environ, store, registry=REGISTRY, leases=PostgresMissionLeases(store, other)
        )
    )
    plan = chain_plan(1)

    def recorded() -> int:
        return len(store.mission_events("bench", "t1"))

    async def run() -> float:
        await first.start(StartMission("bench", plan, mission_id="t1"))
        second.resume_unfinished()
        # MissionStarted, StepStarted; then the successor's first fact: the interrupted step's fate
        await wait_until(lambda: recorded() >= 2, 60, "the first replica started the step")
        leases.stopped = True
        stopped = time.perf_counter()
        await wait_until(lambda: recorded() >= 3, 60, "the successor recorded a fact")
        elapsed = time.perf_counter() - stopped
        await second.finished("bench", "t1")
        await first.stop()
        await second.stop()
        return elapsed

    return asyncio.run(run())


def _drop(name: str) -> None:
    with psycopg.connect(URL, autocommit=True) as connection:
        for suffix in ("events", "tracking", "checkpoints", "artifacts", "leases"):
            connection.execute(f"DROP TABLE IF EXISTS {name}_{suffix}")


def main() -> None:
    """Print ms per step with and without the lease, and a heartbeat's cost."""
    figures: dict[str, dict[bool, float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch)
        for label, missions in (
            (f"one {CHAIN}-step chain", 1),
            (f"{MISSIONS} x 3 steps", MISSIONS),
        ):
            best = {False: float("inf"), True: float("inf")}
            for _ in range(ROUNDS):
                for leased in (False, True):
                    best[leased] = min(best[leased], _drive(home, leased, missions))
            figures[label] = best
        name = f"bench{uuid.uuid4().hex[:10]}"
        store = open_event_store(EventStoreSettings(name=name, home=home, database_url=URL))
        try:
            beat = _heartbeat(store)
        finally:
            store.close()
            _drop(name)
        name = f"bench{uuid.uuid4().hex[:10]}"
        store = open_event_store(EventStoreSettings(name=name, home=home, database_url=URL))
        try:
            takeover = _takeover(home, store)
        finally:
            store.close()
            _drop(name)
    print(f"PostgreSQL at {URL.rsplit('@', 1)[-1]}, {os.cpu_count()} cores, best of {ROUNDS}")
    print(f"{'ms per step':<24}{'no lease':>12}{'leased':>12}{'cost':>12}")
    for label, best in figures.items():
        without, leased = best[False] * 1000, best[True] * 1000
        print(f"{label:<24}{without:>12.2f}{leased:>12.2f}{leased - without:>+12.2f}")
    print(f"one heartbeat renewing {HEARTBEAT_LEASES} leases: {beat * 1000:.1f} ms")
    print(
        f"takeover, heartbeat stopped mid-step -> next fact by another replica:"
        f" {takeover:.2f} s (lease {TAKEOVER_LEASE_SECONDS:g} s, goal under"
        f" {TAKEOVER_LEASE_SECONDS + 1:g} s)"
    )


if __name__ == "__main__":
    main()
