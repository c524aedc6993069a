"""How many executor processes a deployment runs, and what tells each replica apart.

Several executors share one store only through PostgreSQL, where mission leases decide which
replica drives a mission; an SQLite store has one writer, so it has one executor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rustchain.platform.storage.event_store import DATABASE_URL_VARIABLE, EXECUTOR_ID_VARIABLE

EXECUTOR = "executor"


class ReplicaCountError(ValueError):
    """A replica count the deployment cannot run; the message says why and what to do."""


def check_executor_count(count: int, environ: Mapping[str, str]) -> None:
    """Raise ReplicaCountError unless `count` executors can share the store the settings name."""
    if count < 1:
        raise ReplicaCountError(f"--executors must be at least 1, not {count}")
    if count > 1 and not environ.get(DATABASE_URL_VARIABLE):
        raise ReplicaCountError(
            f"--executors {count} needs PostgreSQL: an SQLite event store has one writer, so one"
            f" executor drives it; set {DATABASE_URL_VARIABLE}=postgresql://... to run several"
        )


@dataclass(frozen=True)
class ExecutorReplica:
    """One executor process: its supervised name (log file), its lease owner id, its endpoint."""

    name: str
    replica_id: str
    endpoint: str

    def environ(self) -> dict[str, str]:
        """What the process is told of its identity: a stable id, so that `rustchain status` and
        the logs name a replica the same across its restarts (safe: every lease taken is a new
        epoch, so a restarted replica fences its predecessor)."""
        return {EXECUTOR_ID_VARIABLE: self.replica_id}


def executor_replicas(endpoints: list[str]) -> list[ExecutorReplica]:
    """A replica per endpoint, `executor-1`, `executor-2`, ...; one alone keeps the name
    `executor` (and its log `executor.log`) of a one-executor deployment."""
    return [
        ExecutorReplica(
            EXECUTOR if len(endpoints) == 1 else f"{EXECUTOR}-{number}",
            f"{EXECUTOR}-{number}",
            endpoint,
        )
        for number, endpoint in enumerate(endpoints, start=1)
    ]
