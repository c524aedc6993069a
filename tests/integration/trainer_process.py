"""A trainer consumer in a process of its own, for the replica tests: it records trajectories
into the PostgreSQL tables it is given until SIGTERM (or SIGKILL, which is the point)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
from pathlib import Path

from rustchain.trainer.consuming import consume_until
from rustchain.trainer.postgres_trajectory_store import PostgresTrajectoryStore


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
