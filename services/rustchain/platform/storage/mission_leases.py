"""Which executor replica drives which mission: a lease per mission, with an epoch that fences.

On PostgreSQL the leases live in `<store>_leases` (tenant, mission id, owner, epoch, expiry,
finished) beside the events. A replica claims free or expired leases of unfinished missions with
`FOR UPDATE SKIP LOCKED` (each takeover adds one to the epoch), renews those it holds by
heartbeat, and every append of a mission's events checks the lease in its transaction
(`lease_fence`). Expiry is the database's clock, so replicas' clocks need not agree.
On SQLite one process writes the store: its leases are "not driven here already".
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg.sql import SQL, Composed, Identifier

from rustchain.platform.storage.event_store import (
    EXECUTOR_ID_VARIABLE,
    RecorderEventStore,
    replica_id,
)
from rustchain.platform.storage.fenced_recorder import FencedPostgresProcessRecorder
from rustchain.platform.storage.lease_fence import FIRST_EPOCH, LEASES_TABLE_SUFFIX, Lease

LEASE_SECONDS_VARIABLE = "RUSTCHAIN_LEASE_SECONDS"
CAPACITY_VARIABLE = "RUSTCHAIN_EXECUTOR_CAPACITY"
DEFAULT_LEASE_SECONDS = 5.0
DEFAULT_CAPACITY = 200
_MIN_LEASE_SECONDS = 0.2
N = TypeVar("N", int, float)
_LISTEN_POLL_SECONDS = 0.5
_log = logging.getLogger(__name__)
"""How often the listening thread looks up from its connection to see whether to stop."""


class ReplicaSettingError(ValueError):
    """A replica setting that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class ReplicaSettings:
    """Who this executor replica is, how long its leases last, how many missions it drives."""

    owner: str
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    capacity: int = DEFAULT_CAPACITY

    @property
    def heartbeat_seconds(self) -> float:
        """How often held leases are renewed (and free ones claimed): a third of the period."""
        return self.lease_seconds / 3

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ReplicaSettings:
        """`RUSTCHAIN_EXECUTOR_ID` (default host-pid), `RUSTCHAIN_LEASE_SECONDS`,
        `RUSTCHAIN_EXECUTOR_CAPACITY`; ReplicaSettingError names a bad one."""
        owner = replica_id(environ)
        if len(owner) > 200 or not owner.isprintable():
            raise ReplicaSettingError(
                f"{EXECUTOR_ID_VARIABLE} must be at most 200 printable characters"
            )
        seconds = _number(environ, LEASE_SECONDS_VARIABLE, DEFAULT_LEASE_SECONDS, float)
        if seconds < _MIN_LEASE_SECONDS:
            raise ReplicaSettingError(
                f"{LEASE_SECONDS_VARIABLE} must be at least {_MIN_LEASE_SECONDS} s, not {seconds:g}"
            )
        capacity = _number(environ, CAPACITY_VARIABLE, DEFAULT_CAPACITY, int)
        if capacity < 1:
            raise ReplicaSettingError(f"{CAPACITY_VARIABLE} must be at least 1, not {capacity}")
        return cls(owner, seconds, capacity)


def _number(environ: Mapping[str, str], name: str, default: N, kind: type[N]) -> N:
    text = environ.get(name)
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number of seconds"
        raise ReplicaSettingError(f"{name} expects {what}, found {text!r}") from None


@dataclass(frozen=True)
class LeaseView:
    """Who holds a mission's lease, at which epoch, until when (what `rustchain status` shows)."""

    owner: str | None
    epoch: int
    expires_at: datetime | None
    finished: bool = False


class MissionLeases(Protocol):
    """The leases of one store's missions, as one replica sees and takes them."""

    @property
    def replica(self) -> ReplicaSettings:
        """This replica: its identity, lease period and capacity."""

    @property
    def shared(self) -> bool:
        """True when several replicas may share the store (quotas are counted in it then)."""

    def take(self, tenant: str, mission_id: str) -> Lease | None:
        """This mission's lease if it is free, expired or held under this replica's name (at a
        new epoch); else None."""

    def started(self, tenant: str, mission_id: str) -> Lease | None:
        """The lease this replica took with a start it recorded (`take=True`)."""

    def claim(self, limit: int) -> list[Lease]:
        """Up to `limit` free or expired leases of unfinished missions, oldest waiting first."""

    def renew(self, leases: Iterable[Lease]) -> set[Lease]:
        """Extend the leases still held; returns those (the others were lost)."""

    def release(self, lease: Lease) -> None:
        """Give an unfinished mission's lease up, for another replica to claim at once."""

    def close(self, lease: Lease) -> None:
        """End a finished mission's lease (nothing to claim any more)."""

    def adopt(self, missions: Iterable[tuple[str, str]]) -> None:
        """Make free leases for unfinished missions that have none (recorded before leases)."""

    def owner_of(self, tenant: str, mission_id: str) -> LeaseView | None:
        """Who holds the mission's lease (None when it has none)."""

    def listen(
        self, wake: Callable[[], None], changed: Callable[[str, str], None]
    ) -> Callable[[], None]:
        """Call `wake` (from another thread) when a lease is left free, and `changed(tenant,
        mission id)` when another replica wrote to a mission's chain; returns what stops it."""

    def announce_change(self, tenant: str, mission_id: str) -> None:
        """Tell the mission's owner that its chain changed (a cancel written elsewhere)."""


class LocalMissionLeases:
    """One process writes the store (SQLite): a mission is leased while this process drives it."""

    shared = False

    def __init__(self, replica: ReplicaSettings) -> None:
        self.replica = replica
        self._held: dict[tuple[str, str], Lease] = {}

    def take(self, tenant: str, mission_id: str) -> Lease | None:
        """The mission's lease, unless this process holds it already."""
        if (tenant, mission_id) in self._held:
            return None
        lease = Lease(tenant, mission_id, self.replica.owner, 0)
        self._held[(tenant, mission_id)] = lease
        return lease

    def started(self, tenant: str, mission_id: str) -> Lease | None:
        """The mission's lease, as `take`."""
        return self.take(tenant, mission_id)

    def claim(self, limit: int) -> list[Lease]:
        """Nothing: no other process gives missions up."""
        return []

    def renew(self, leases: Iterable[Lease]) -> set[Lease]:
        """Every lease: nobody else can take one."""
        return set(leases)

    def release(self, lease: Lease) -> None:
        """Forget the lease."""
        self._held.pop((lease.tenant, lease.mission_id), None)

    def close(self, lease: Lease) -> None:
        """Forget the lease."""
        self.release(lease)

    def adopt(self, missions: Iterable[tuple[str, str]]) -> None:
        """Nothing to record: unfinished missions are found in the store at start."""

    def owner_of(self, tenant: str, mission_id: str) -> LeaseView | None:
        """This process while it drives the mission."""
        held = self._held.get((tenant, mission_id))
        return None if held is None else LeaseView(held.owner, held.epoch, None)

    def listen(
        self, wake: Callable[[], None], changed: Callable[[str, str], None]
    ) -> Callable[[], None]:
        """Nothing to hear: no other process frees a lease or writes a chain."""
        return lambda: None

    def announce_change(self, tenant: str, mission_id: str) -> None:
        """Nobody to tell: this process drives every mission of the store."""


_COLUMNS = "tenant, mission_id, owner, epoch, expires_at"


class PostgresMissionLeases:
    """The leases in the store's `<store>_leases` table, shared by every replica."""

    shared = True

    def __init__(self, store: RecorderEventStore, replica: ReplicaSettings) -> None:
        recorder = store.recorder
        if not isinstance(recorder, FencedPostgresProcessRecorder):
            raise TypeError("PostgreSQL leases need a store opened on PostgreSQL")
        self.replica = replica
        self._datastore = recorder.datastore
        self._table: Identifier = recorder.leases_table
        self._channel: Identifier = recorder.leases_channel
        self._changes: Identifier = recorder.changes_channel
        self._changes_name: str = recorder.changes_channel_name
        self._period = replica.lease_seconds
        # Every session of this store's executors is named `rustchain <store> <replica>`.
        store_name = recorder.leases_table_name.removesuffix(LEASES_TABLE_SUFFIX)
        self._sessions = f"rustchain {store_name} "

    def _rows(self, statement: SQL | Composed, params: tuple[Any, ...]) -> list[Any]:
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(statement, params, prepare=True)
            return cursor.fetchall() if cursor.description is not None else []

    def _leases(self, rows: list[Any]) -> list[Lease]:
        return [Lease(r["tenant"], r["mission_id"], r["owner"], r["epoch"]) for r in rows]

    def take(self, tenant: str, mission_id: str) -> Lease | None:
        """The mission's lease if free, expired or already this replica's name, at a new epoch:
        an earlier process of the same name (restarted, or a zombie) can no longer write."""
        owner = self.replica.owner
        rows = self._rows(
            SQL(
                "UPDATE {t} SET epoch = epoch + 1, owner = %s,"
                " expires_at = clock_timestamp() + %s * interval '1 second'"
                " WHERE tenant = %s AND mission_id = %s AND NOT finished"
                " AND (owner IS NULL OR owner = %s OR expires_at <= clock_timestamp())"
                " RETURNING " + _COLUMNS
            ).format(t=self._table),
            (owner, self._period, tenant, mission_id, owner),
        )
        leases = self._leases(rows)
        return leases[0] if leases else None

    def started(self, tenant: str, mission_id: str) -> Lease | None:
        """The lease the start's transaction made for this replica (no query: its first epoch)."""
        return Lease(tenant, mission_id, self.replica.owner, FIRST_EPOCH)

    def claim(self, limit: int) -> list[Lease]:
        """Up to `limit` free or expired leases, skipping rows another replica is deciding."""
        if limit <= 0:
            return []
        rows = self._rows(
            SQL(
                "WITH free AS (SELECT tenant, mission_id FROM {t}"
                " WHERE NOT finished AND (owner IS NULL OR expires_at <= clock_timestamp())"
                " ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED)"
                " UPDATE {t} AS l SET owner = %s, epoch = l.epoch + 1,"
                " expires_at = clock_timestamp() + %s * interval '1 second'"
                " FROM free WHERE l.tenant = free.tenant AND l.mission_id = free.mission_id"
                " RETURNING l.tenant, l.mission_id, l.owner, l.epoch"
            ).format(t=self._table),
            (limit, self.replica.owner, self._period),
        )
        return self._leases(rows)

    def _end_stuck_holders(self, connection: psycopg.Connection[Any]) -> None:
        """End the sessions of this store's executors stuck inside a transaction, waiting on
        their client for longer than a lease period.

        Their locks (the lease row an append checked, the events table it locked) would hold up
        every takeover and every other replica's appends: a claim skips a locked row, and an
        append waits for the table. A session cut off (or frozen) after a statement ran but
        before the message that ends it is "active", so no idle-in-transaction limit ends it,
        and TCP may not notice for hours. Its replica's writes are refused by the fence anyway;
        ending the session (`pg_terminate_backend`, allowed for sessions of the same role)
        frees what it holds. Only sessions named as this store's executors' are ended.
        """
        try:
            rows = (
                connection.cursor(row_factory=dict_row)
                .execute(
                    SQL(
                        "SELECT application_name, pg_terminate_backend(pid) AS ended"
                        " FROM pg_stat_activity"
                        " WHERE datname = current_database() AND usename = current_user"
                        " AND pid <> pg_backend_pid() AND starts_with(application_name, %s)"
                        " AND wait_event = 'ClientRead'"
                        " AND state IN ('active', 'idle in transaction')"
                        " AND xact_start < clock_timestamp() - %s * interval '1 second'"
                    ),
                    (self._sessions, self._period),
                )
                .fetchall()
            )
        except psycopg.Error as error:  # the listening goes on (or connects again)
            _log.warning("could not look for executor sessions stuck in a transaction: %s", error)
            return
        for row in rows:
            _log.warning(
                "%s a session of %s stuck in a transaction for over %g s, waiting on its client",
                "ended" if row["ended"] else "could not end",
                row["application_name"],
                self._period,
            )

    def renew(self, leases: Iterable[Lease]) -> set[Lease]:
        """Extend the leases still ours at their epoch and unexpired; returns those."""
        held = list(leases)
        if not held:
            return set()
        rows = self._rows(
            SQL(
                "UPDATE {t} AS l SET expires_at = clock_timestamp() + %s * interval '1 second'"
                " FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS h(tenant, mission_id, epoch)"
                " WHERE l.tenant = h.tenant AND l.mission_id = h.mission_id AND l.epoch = h.epoch"
                " AND l.owner = %s AND NOT l.finished AND l.expires_at > clock_timestamp()"
                " RETURNING l.tenant, l.mission_id, l.owner, l.epoch"
            ).format(t=self._table),
            (
                self._period,
                [lease.tenant for lease in held],
                [lease.mission_id for lease in held],
                [lease.epoch for lease in held],
                self.replica.owner,
            ),
        )
        return set(self._leases(rows))

    def release(self, lease: Lease) -> None:
        """Free the lease now (its epoch stays: the next claim adds one), and tell the peers."""
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(
                SQL(
                    "UPDATE {t} SET owner = NULL, expires_at = clock_timestamp()"
                    " WHERE tenant = %s AND mission_id = %s AND owner = %s AND epoch = %s"
                ).format(t=self._table),
                (lease.tenant, lease.mission_id, lease.owner, lease.epoch),
            )
            cursor.execute(SQL("NOTIFY {c}").format(c=self._channel))

    def close(self, lease: Lease) -> None:
        """Mark the mission's lease finished (a no-op when its last append did already)."""
        self._rows(
            SQL(
                "UPDATE {t} SET finished = true, owner = NULL"
                " WHERE tenant = %s AND mission_id = %s AND epoch = %s AND NOT finished"
            ).format(t=self._table),
            (lease.tenant, lease.mission_id, lease.epoch),
        )

    def adopt(self, missions: Iterable[tuple[str, str]]) -> None:
        """Free leases for unfinished missions that have none (recorded before leases)."""
        pairs = list(missions)
        if not pairs:
            return
        self._rows(
            SQL(
                "INSERT INTO {t} (tenant, mission_id, owner, epoch, expires_at, finished)"
                " SELECT tenant, mission_id, NULL, 0, clock_timestamp(), false"
                " FROM unnest(%s::text[], %s::text[]) AS m(tenant, mission_id)"
                " ON CONFLICT (tenant, mission_id) DO NOTHING"
            ).format(t=self._table),
            ([tenant for tenant, _ in pairs], [mission for _, mission in pairs]),
        )

    def listen(
        self, wake: Callable[[], None], changed: Callable[[str, str], None]
    ) -> Callable[[], None]:
        """From a listening thread (its own connection): call `wake` at each NOTIFY of a lease
        left free, `changed(tenant, mission id)` at each announced change of a chain; returns
        what stops it. Without it, the heartbeat still claims at each beat."""
        stopping = threading.Event()
        given = self._datastore.pool.kwargs
        made = given() if callable(given) else given or {}
        settings = {k: v for k, v in made.items() if k != "row_factory"}
        changes = self._changes_name

        def heard(notify: psycopg.Notify) -> None:
            if notify.channel != changes:
                wake()
                return
            with contextlib.suppress(ValueError, TypeError):  # not ours to act on
                tenant, mission_id = json.loads(notify.payload)
                changed(str(tenant), str(mission_id))

        def run() -> None:
            while not stopping.is_set():
                try:
                    with psycopg.connect(autocommit=True, **settings) as connection:
                        connection.execute(SQL("LISTEN {c}").format(c=self._channel))
                        connection.execute(SQL("LISTEN {c}").format(c=self._changes))
                        checked = time.monotonic()
                        while not stopping.is_set():
                            for notify in connection.notifies(timeout=_LISTEN_POLL_SECONDS):
                                heard(notify)
                            if time.monotonic() - checked >= self.replica.heartbeat_seconds:
                                # Here, not in the heartbeat: a stuck lock can block the event
                                # loop (its appends wait for the events table), and with it the
                                # heartbeat; this thread and its connection go on.
                                self._end_stuck_holders(connection)
                                checked = time.monotonic()
                except psycopg.Error:
                    # Unreachable for now: the heartbeat claims meanwhile; listen again later.
                    stopping.wait(self.replica.heartbeat_seconds)

        thread = threading.Thread(target=run, name="rustchain-lease-listener", daemon=True)
        thread.start()

        def stop() -> None:
            stopping.set()
            thread.join(_LISTEN_POLL_SECONDS * 4)

        return stop

    def announce_change(self, tenant: str, mission_id: str) -> None:
        """NOTIFY the store's changes channel with the mission (its owner re-reads it)."""
        self._rows(
            SQL("SELECT pg_notify(%s, %s)"),
            (self._changes_name, json.dumps([tenant, mission_id])),
        )

    def owner_of(self, tenant: str, mission_id: str) -> LeaseView | None:
        """The lease row as stored (an expired one names its last owner, with its expiry)."""
        rows = self._rows(
            SQL(
                "SELECT owner, epoch, expires_at, finished FROM {t}"
                " WHERE tenant = %s AND mission_id = %s"
            ).format(t=self._table),
            (tenant, mission_id),
        )
        if not rows:
            return None
        row = rows[0]
        return LeaseView(row["owner"], row["epoch"], row["expires_at"], row["finished"])


def describe_leases(leases: MissionLeases) -> str:
    """One line for the executor's first lines: who drives the store's missions."""
    replica = leases.replica
    if not leases.shared:
        return (
            "leases: one executor (SQLite): this process drives every mission of its store;"
            " several executors need RUSTCHAIN_DATABASE_URL"
        )
    return (
        f"leases: executor '{replica.owner}' shares PostgreSQL with any other replicas"
        f" (lease {replica.lease_seconds:g} s, capacity {replica.capacity} missions)"
    )


def open_mission_leases(store: RecorderEventStore, replica: ReplicaSettings) -> MissionLeases:
    """The store's leases: shared in PostgreSQL, this process's own on SQLite or in memory."""
    if isinstance(store.recorder, FencedPostgresProcessRecorder):
        return PostgresMissionLeases(store, replica)
    return LocalMissionLeases(replica)
