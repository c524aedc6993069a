"""A trainer consumer in a process of its own, for the replica tests: it records trajectories
into the PostgreSQL tables it is given until SIGTERM (or SIGKILL, which is the point). And the
finished missions a trainer consumes: run on an executor, relayed to JetStream."""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
from pathlib import Path

from rustchain.bootstrap.executor import build_executor
from rustchain.platform.nats.relay import JetStreamRelay
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.steps import default_registry
from rustchain.trainer.consuming import consume_until
from rustchain.trainer.postgres_trajectory_store import PostgresTrajectoryStore
from tests.unit.compile_helpers import plan_of


async def _consume(nats_url: str, database_url: str, prefix: str, ack_wait: float) -> None:
    store = PostgresTrajectoryStore(database_url, prefix)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await consume_until(nats_url, store, stop, ack_wait)
    finally:
        store.close()


def start_trainer(
    nats_url: str, database_url: str, prefix: str, ack_wait: float, cwd: Path
) -> subprocess.Popen[bytes]:
    """This module as a trainer process of its own (`cwd`: the repository, for the import)."""
    command = [sys.executable, "-m", __name__, "--nats-url", nats_url]
    command += ["--database-url", database_url, "--prefix", prefix, "--ack-wait", str(ack_wait)]
    return subprocess.Popen(command, cwd=cwd)


def finish_missions(
    home: Path,
    nats_url: str,
    mission: str,
    count: int,
    tenant: str = "acme",
    variables: dict[str, str] | None = None,
) -> list[str]:
    """Run `count` copies of the mission YAML to their end on the executor under `home`, one
    after another, and relay them to JetStream; their ids."""
    store = open_event_store(EventStoreSettings(name="executor", home=home))
    executor = build_executor(
        {"RUSTCHAIN_HOME": str(home)},
        store,
        registry=default_registry(include_plugins=False),
        policy_for=None,
    )
    plan = plan_of(mission)

    async def run_all() -> list[str]:
        missions = []
        for _ in range(count):
            missions.append(executor.start(tenant, plan, dict(variables or {})))
            await executor.drive(tenant, missions[-1])
        await JetStreamRelay(store, nats_url).catch_up(timeout=60)
        return missions

    try:
        return asyncio.run(run_all())
    finally:
        store.close()


def main() -> None:
    """Consume --nats-url's finished missions into the --prefix tables of --database-url."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--nats-url", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--ack-wait", type=float, required=True)
    args = parser.parse_args()
    asyncio.run(_consume(args.nats_url, args.database_url, args.prefix, args.ack_wait))


if __name__ == "__main__":
    main()
