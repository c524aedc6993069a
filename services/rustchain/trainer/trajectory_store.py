"""The trainer's store: trajectories and the consumer's position, written in one transaction.

A redelivered message finds its stream sequence already tracked and is skipped, so a trajectory
is never recorded twice (eventsourcing's "save effects and tracking position together").
`TrajectoryStore` is the interface; `SqliteTrajectoryStore` the embedded default, read by one
trainer process, so its position is the last sequence processed. The PostgreSQL store, which
several trainers share, is `postgres_trajectory_store.py`.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Protocol

from rustchain.domain.runs.trajectory import Trajectory
from rustchain.platform.storage.private_files import private_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trajectories (
    tenant TEXT NOT NULL, mission_id TEXT NOT NULL, document TEXT NOT NULL,
    PRIMARY KEY (tenant, mission_id)
);
CREATE TABLE IF NOT EXISTS tracking (
    consumer TEXT NOT NULL, stream TEXT NOT NULL, sequence INTEGER NOT NULL,
    PRIMARY KEY (consumer, stream)
);
"""


class TrajectoryStore(Protocol):
    """Trajectories per tenant, and which stream messages each consumer has processed."""

    def processed(self, consumer: str, stream: str, sequence: int) -> bool:
        """Whether the consumer has already processed (saved or skipped) that message."""

    def save(self, trajectory: Trajectory, consumer: str, stream: str, sequence: int) -> bool:
        """Record the trajectory and the message as processed, in one transaction; False (and
        nothing written) if the message was already processed."""

    def skip(self, consumer: str, stream: str, sequence: int) -> None:
        """Record as processed a message that makes no trajectory."""

    def put(self, trajectory: Trajectory) -> None:
        """Keep a trajectory the trainer ran itself (an optimiser's run), outside any stream."""

    def get(self, tenant: str, mission_id: str) -> Trajectory | None:
        """One trajectory of a tenant, or None."""

    def trajectories(self, tenant: str) -> list[Trajectory]:
        """Every trajectory of a tenant."""

    def close(self) -> None:
        """Release the database."""


class SqliteTrajectoryStore:
    """Trajectories per tenant, and how far each consumer has read each stream."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Made 0600 before SQLite opens it; its -wal and -shm files take the same mode.
        private_file(path)
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=FULL")
        self._connection.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def position(self, consumer: str, stream: str) -> int:
        """The last stream sequence the consumer has processed (0 when none)."""
        with self._lock:
            row = self._connection.execute(
                "SELECT sequence FROM tracking WHERE consumer = ? AND stream = ?",
                (consumer, stream),
            ).fetchone()
        return int(row[0]) if row else 0

    def processed(self, consumer: str, stream: str, sequence: int) -> bool:
        """Whether the message is at or before the consumer's position (one consumer reads the
        stream in order, so everything before its position was processed)."""
        return sequence <= self.position(consumer, stream)

    def save(self, trajectory: Trajectory, consumer: str, stream: str, sequence: int) -> bool:
        """Record the trajectory and the position together; False if already processed."""
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                row = self._connection.execute(
                    "SELECT sequence FROM tracking WHERE consumer = ? AND stream = ?",
                    (consumer, stream),
                ).fetchone()
                if row is not None and row[0] >= sequence:
                    self._connection.execute("ROLLBACK")
                    return False
                self._connection.execute(
                    "INSERT OR REPLACE INTO trajectories VALUES (?, ?, ?)",
                    (trajectory.tenant, trajectory.mission_id, trajectory.model_dump_json()),
                )
                self._connection.execute(
                    "INSERT OR REPLACE INTO tracking VALUES (?, ?, ?)", (consumer, stream, sequence)
                )
                self._connection.execute("COMMIT")
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
        return True

    def put(self, trajectory: Trajectory) -> None:
        """Keep a trajectory the trainer ran itself (an optimiser's run), outside any stream."""
        with self._lock:
            self._connection.execute(
                "INSERT OR REPLACE INTO trajectories VALUES (?, ?, ?)",
                (trajectory.tenant, trajectory.mission_id, trajectory.model_dump_json()),
            )

    def skip(self, consumer: str, stream: str, sequence: int) -> None:
        """Advance the position past a message that makes no trajectory."""
        with self._lock:
            self._connection.execute(
                "INSERT INTO tracking VALUES (?, ?, ?) ON CONFLICT (consumer, stream) "
                "DO UPDATE SET sequence = MAX(sequence, excluded.sequence)",
                (consumer, stream, sequence),
            )

    def get(self, tenant: str, mission_id: str) -> Trajectory | None:
        """One trajectory of a tenant, or None."""
        with self._lock:
            row = self._connection.execute(
                "SELECT document FROM trajectories WHERE tenant = ? AND mission_id = ?",
                (tenant, mission_id),
            ).fetchone()
        return None if row is None else Trajectory.model_validate_json(row[0])

    def trajectories(self, tenant: str) -> list[Trajectory]:
        """Every trajectory of a tenant."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT document FROM trajectories WHERE tenant = ? ORDER BY mission_id", (tenant,)
            ).fetchall()
        return [Trajectory.model_validate_json(row[0]) for row in rows]

    def close(self) -> None:
        """Close the database."""
        self._connection.close()
