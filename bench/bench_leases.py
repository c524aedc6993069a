"""The lease's cost per step on PostgreSQL (issue 15): the same missions driven with the
store's shared leases (each append checks the lease in its transaction) and with the
one-process leases (no check), side by side; and one heartbeat's renewal of many leases.

Needs the PostgreSQL server of RUSTCHAIN_TEST_POSTGRES_URL (default 127.0.0.1:5432/test);
its tables are made for the run and dropped after.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from bench.bench_executor import REGISTRY, chain_plan
from rustchain.bootstrap.executor import build_executor
from rustchain.domain.access.quotas import TenantQuotas
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

URL = os.environ.get("RUSTCHAIN_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test"
CHAIN = 150
MISSIONS = 50
HEARTBEAT_LEASES = 200
ROUNDS = 2
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
    print(f"PostgreSQL at {URL.rsplit('@', 1)[-1]}, {os.cpu_count()} cores, best of {ROUNDS}")
    print(f"{'ms per step':<24}{'no lease':>12}{'leased':>12}{'cost':>12}")
    for label, best in figures.items():
        without, leased = best[False] * 1000, best[True] * 1000
        print(f"{label:<24}{without:>12.2f}{leased:>12.2f}{leased - without:>+12.2f}")
    print(f"one heartbeat renewing {HEARTBEAT_LEASES} leases: {beat * 1000:.1f} ms")


if __name__ == "__main__":
    main()
