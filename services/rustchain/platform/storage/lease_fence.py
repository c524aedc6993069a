"""What an append carries about a mission's lease, and the checks run in the append's transaction.

A driver's append carries a `FencedWrite` (its lease: owner and epoch), checked against the
lease row in the same transaction as the insert, so a replica that lost its lease (paused,
partitioned, slow) writes nothing. A start carries a `LeaseOpening`: the mission's lease row and
the tenant's concurrency quota are decided in the transaction that records MissionStarted.
The store's aggregate version stays the second fence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg import Cursor
from psycopg.sql import SQL, Composed, Identifier

LEASES_TABLE_SUFFIX = "_leases"
FIRST_EPOCH = 1
"""The epoch of a lease a starting replica takes with the start; each takeover adds one."""


class LeaseLostError(RuntimeError):
    """A driver's append refused: its lease on the mission expired or another replica took it."""


@dataclass(frozen=True)
class Lease:
    """A replica's hold on one mission: valid while the row still names this owner and epoch."""

    tenant: str
    mission_id: str
    owner: str
    epoch: int


@dataclass(frozen=True)
class FencedWrite:
    """An append by the lease holder; `closes` ends the lease with the mission's last fact."""

    lease: Lease
    closes: bool = False


@dataclass(frozen=True)
class LeaseOpening:
    """A start: the lease row to make (taken by `owner`, or free for any replica's claim)."""

    tenant: str
    mission_id: str
    owner: str | None
    lease_seconds: float
    # Refuses the start (QuotaExceededError) given how many of its missions the tenant runs.
    check_start: Callable[[str, int], None]


LeaseWrite = FencedWrite | LeaseOpening
"""What an append may carry about the lease of the mission it writes."""


def lease_lost(write: FencedWrite) -> LeaseLostError:
    """The error of a refused fenced append, naming the mission and the lease it held."""
    lease = write.lease
    return LeaseLostError(
        f"the lease on mission '{lease.mission_id}' of tenant '{lease.tenant}' is no longer"
        f" held by '{lease.owner}' at epoch {lease.epoch} (it expired or another executor took"
        " it over): nothing was written"
    )


def check_write(
    cursor: Cursor[Any], table: Identifier, write: LeaseWrite, channel: Identifier
) -> None:
    """Run the lease's part of an append on the append's own cursor (its transaction); a lease
    left free is announced on `channel` when the transaction commits."""
    if isinstance(write, LeaseOpening):
        _open(cursor, table, write)
        if write.owner is None:
            cursor.execute(SQL("NOTIFY {c}").format(c=channel))
        return
    lease = write.lease
    key = (lease.tenant, lease.mission_id, lease.owner, lease.epoch)
    held = SQL(
        " WHERE tenant = %s AND mission_id = %s AND owner = %s AND epoch = %s"
        " AND NOT finished AND expires_at > clock_timestamp()"
    )
    if write.closes:
        # The mission's last fact ends its lease in the same commit: quotas count it at once.
        statement = SQL("UPDATE {t} SET finished = true, owner = NULL").format(t=table)
        cursor.execute(statement + held + SQL(" RETURNING epoch"), key, prepare=True)
    else:
        # FOR SHARE: a takeover waits for this commit, so it folds what this append wrote.
        statement = SQL("SELECT epoch FROM {t}").format(t=table)
        cursor.execute(statement + held + SQL(" FOR SHARE"), key, prepare=True)
    if cursor.fetchone() is None:
        raise lease_lost(write)


def _open(cursor: Cursor[Any], table: Identifier, opening: LeaseOpening) -> None:
    # One tenant's starts queue on its advisory lock, so the count and the new row are one step
    # across every replica; other tenants' starts do not wait.
    cursor.execute(
        SQL("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"),
        (f"{table.as_string()}:{opening.tenant}",),
    )
    cursor.execute(
        SQL("SELECT count(*) AS running FROM {t} WHERE tenant = %s AND NOT finished").format(
            t=table
        ),
        (opening.tenant,),
    )
    row = cursor.fetchone()
    opening.check_start(opening.tenant, int(row["running"]) if row is not None else 0)
    taken = opening.owner is not None
    cursor.execute(
        SQL(
            "INSERT INTO {t} (tenant, mission_id, owner, epoch, expires_at, finished)"
            " VALUES (%s, %s, %s, %s, clock_timestamp() + %s * interval '1 second', false)"
        ).format(t=table),
        (
            opening.tenant,
            opening.mission_id,
            opening.owner,
            FIRST_EPOCH if taken else 0,
            opening.lease_seconds if taken else 0.0,
        ),
    )


def create_leases_table(table: Identifier, index: Identifier) -> list[Composed]:
    """The statements that make a store's lease table (with its index of claimable rows)."""
    return [
        SQL(
            "CREATE TABLE IF NOT EXISTS {t} ("
            " tenant TEXT NOT NULL, mission_id TEXT NOT NULL, owner TEXT,"
            " epoch BIGINT NOT NULL, expires_at TIMESTAMPTZ NOT NULL,"
            " finished BOOLEAN NOT NULL DEFAULT false,"
            " PRIMARY KEY (tenant, mission_id))"
        ).format(t=table),
        SQL("CREATE INDEX IF NOT EXISTS {i} ON {t} (expires_at) WHERE NOT finished").format(
            i=index, t=table
        ),
    ]
