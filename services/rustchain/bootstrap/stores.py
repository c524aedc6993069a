"""The stores a process opens: each service's event store, named by its service in the settings,
and the stores with tables of their own (memory, the trainer's trajectories)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from eventsourcing.persistence import PersistenceError

from rustchain.platform.storage.event_store import (
    DATABASE_URL_VARIABLE,
    EventStoreError,
    EventStoreSettings,
    RecorderEventStore,
    describe_store,
    open_event_store,
)
from rustchain.platform.storage.home import rustchain_home
from rustchain.platform.storage.memory_store import MemoryStore, SqliteMemoryStore
from rustchain.platform.storage.postgres_memory_store import MEMORY_TABLES, PostgresMemoryStore
from rustchain.trainer.postgres_trajectory_store import TRAJECTORY_TABLES, PostgresTrajectoryStore
from rustchain.trainer.trajectory_store import SqliteTrajectoryStore, TrajectoryStore


class StoreUnreachableError(EventStoreError):
    """A store that cannot be opened; the message names it (never its password) and why."""


def store_settings(service: str, environ: Mapping[str, str]) -> EventStoreSettings:
    """Where a service's event store is, from the settings."""
    return EventStoreSettings.from_environ(service, environ)


def open_store(service: str, environ: Mapping[str, str]) -> RecorderEventStore:
    """A service's event store, its tables made if missing; StoreUnreachableError if it cannot
    be opened."""
    settings = store_settings(service, environ)
    try:
        return open_event_store(settings)
    except (EventStoreError, PersistenceError) as error:
        reason = " ".join(str(error).split())  # libpq's reasons span lines; this is one
        raise StoreUnreachableError(f"{describe_store(settings)}: {reason}") from error


MEMORY_FILE = "memory.sqlite3"


def open_memory_store(environ: Mapping[str, str], home: Path | None = None) -> MemoryStore:
    """The deployment's memory: PostgreSQL full-text search in the `memory_*` tables of
    `RUSTCHAIN_DATABASE_URL` when it is set (shared by every memory replica), else SQLite FTS5 in
    `memory.sqlite3` under the home (one process at a time)."""
    url = environ.get(DATABASE_URL_VARIABLE)
    if url:
        return PostgresMemoryStore(url, MEMORY_TABLES)
    return SqliteMemoryStore((home or rustchain_home(environ)) / MEMORY_FILE)


TRAJECTORIES_FILE = "trainer.sqlite3"


def open_trajectory_store(environ: Mapping[str, str]) -> TrajectoryStore:
    """The trainer's trajectories and consumer position: in the `trainer_*` tables of
    `RUSTCHAIN_DATABASE_URL` when it is set (shared by every trainer replica), else in
    `trainer.sqlite3` under the home (one trainer)."""
    url = environ.get(DATABASE_URL_VARIABLE)
    if url:
        return PostgresTrajectoryStore(url, TRAJECTORY_TABLES)
    return SqliteTrajectoryStore(rustchain_home(environ) / TRAJECTORIES_FILE)
