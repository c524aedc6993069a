"""The trainer's store on PostgreSQL, shared by any number of trainer replicas.

The replicas share one durable JetStream consumer, so each processes some of a stream's messages,
not a prefix of them: a last-sequence position would make one replica skip a message another
left unacked. The position is therefore the set of messages processed, one row each, keyed
(consumer, stream, sequence): a trajectory and its message's row commit in one transaction, and
the message is acked only after that commit. A redelivered message (its replica died before the
ack) finds its row and is acked without a second trajectory; two replicas saving the same message
at once meet on the row's key, and the second writes nothing. Trajectories are keyed (tenant,
mission id), so none is stored twice whatever the delivery.
"""

from __future__ import annotations

from rustchain.domain.runs.trajectory import Trajectory
from rustchain.platform.storage.postgres_tables import PostgresTables

TRAJECTORY_TABLES = "trainer"
"""The tables' prefix in a deployment's database: `trainer_trajectories`, `trainer_deliveries`
(beside the trainer event store's `trainer_events`)."""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS {prefix}_trajectories (
    tenant TEXT NOT NULL, mission_id TEXT NOT NULL, document TEXT NOT NULL,
    PRIMARY KEY (tenant, mission_id)
);
CREATE TABLE IF NOT EXISTS {prefix}_deliveries (
    consumer TEXT NOT NULL, stream TEXT NOT NULL, sequence BIGINT NOT NULL,
    PRIMARY KEY (consumer, stream, sequence)
);
"""


class PostgresTrajectoryStore:
    """A TrajectoryStore in the `<prefix>_trajectories` and `<prefix>_deliveries` tables."""

    def __init__(self, url: str, prefix: str = TRAJECTORY_TABLES) -> None:
        self._tables = PostgresTables(url, prefix, _SCHEMA)
        self._trajectories = f"{prefix}_trajectories"
        self._deliveries = f"{prefix}_deliveries"
        self._upsert = (
            f"INSERT INTO {self._trajectories} VALUES (%s, %s, %s)"
            " ON CONFLICT (tenant, mission_id) DO UPDATE SET document = excluded.document"
        )

    def processed(self, consumer: str, stream: str, sequence: int) -> bool:
        """Whether the consumer (any replica of it) has processed that message."""
        with self._tables.statement() as cursor:
            cursor.execute(
                f"SELECT 1 FROM {self._deliveries}"
                " WHERE consumer = %s AND stream = %s AND sequence = %s",
                (consumer, stream, sequence),
            )
            return cursor.fetchone() is not None

    def save(self, trajectory: Trajectory, consumer: str, stream: str, sequence: int) -> bool:
        """Record the trajectory and its message in one transaction; False if the message was
        already processed (then nothing is written)."""
        with self._tables.transaction() as cursor:
            # The row's key decides between replicas: a second insert of the same message waits
            # for the first one's commit, then inserts nothing.
            cursor.execute(
                f"INSERT INTO {self._deliveries} VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (consumer, stream, sequence),
            )
            if cursor.rowcount == 0:
                return False
            cursor.execute(
                self._upsert,
                (trajectory.tenant, trajectory.mission_id, trajectory.model_dump_json()),
            )
        return True

    def skip(self, consumer: str, stream: str, sequence: int) -> None:
        """Record as processed a message that makes no trajectory."""
        with self._tables.statement() as cursor:
            cursor.execute(
                f"INSERT INTO {self._deliveries} VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (consumer, stream, sequence),
            )

    def put(self, trajectory: Trajectory) -> None:
        """Keep a trajectory the trainer ran itself (an optimiser's run), outside any stream."""
        with self._tables.statement() as cursor:
            cursor.execute(
                self._upsert,
                (trajectory.tenant, trajectory.mission_id, trajectory.model_dump_json()),
            )

    def get(self, tenant: str, mission_id: str) -> Trajectory | None:
        """One trajectory of a tenant, or None."""
        with self._tables.statement() as cursor:
            cursor.execute(
                f"SELECT document FROM {self._trajectories} WHERE tenant = %s AND mission_id = %s",
                (tenant, mission_id),
            )
            row = cursor.fetchone()
        return None if row is None else Trajectory.model_validate_json(row[0])

    def trajectories(self, tenant: str) -> list[Trajectory]:
        """Every trajectory of a tenant, by mission id."""
        with self._tables.statement() as cursor:
            cursor.execute(
                f"SELECT document FROM {self._trajectories} WHERE tenant = %s"
                ' ORDER BY mission_id COLLATE "C"',
                (tenant,),
            )
            rows = cursor.fetchall()
        return [Trajectory.model_validate_json(row[0]) for row in rows]

    def close(self) -> None:
        """Close the connections."""
        self._tables.close()
