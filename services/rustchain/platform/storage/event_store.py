"""Event stores on the `eventsourcing` library: SQLite by default, PostgreSQL when configured."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import unquote, urlsplit

from eventsourcing.persistence import (
    AggregateRecorder,
    Cipher,
    InfrastructureFactory,
    IntegrityError,
    ProcessRecorder,
    StoredEvent,
    Tracking,
)
from eventsourcing.popo import POPOAggregateRecorder, POPOProcessRecorder
from eventsourcing.postgres import PostgresFactory
from eventsourcing.utils import Environment
from pydantic import ValidationError

from rustchain.domain.errors import CorruptHistoryError
from rustchain.domain.events.envelope import EventDraft, EventEnvelope, decode_event, seal_all
from rustchain.domain.events.fact_family import FactFamily, Recorded
from rustchain.platform.storage.artifact_store import (
    ArtifactStore,
    HeldArtifactStore,
    SqlArtifactStore,
)
from rustchain.platform.storage.home import rustchain_home
from rustchain.platform.storage.lease_fence import LeaseWrite
from rustchain.platform.storage.notification_scan import scan_states
from rustchain.platform.storage.private_files import private_file
from rustchain.platform.storage.schema_lock import schema_lock

DATABASE_URL_VARIABLE = "RUSTCHAIN_DATABASE_URL"
CIPHER_KEY_VARIABLE = "RUSTCHAIN_CIPHER_KEY"
EXECUTOR_ID_VARIABLE = "RUSTCHAIN_EXECUTOR_ID"
POOL_SIZE_VARIABLE = "RUSTCHAIN_DATABASE_POOL_SIZE"
DEFAULT_POOL_SIZE = 2
"""Connections a store keeps open while idle: an executor appends from its event loop and
renews its leases from one thread. Bursts open up to `POOL_OVERFLOW` more (closed again after
ten idle minutes): every process opens a few stores, and PostgreSQL's default is 100 sessions."""
POOL_OVERFLOW = 10
IDLE_IN_TRANSACTION_SECONDS = 5
"""PostgreSQL ends a store's session left idle inside a transaction this long: a process frozen
mid-append (SIGSTOP, a stalled node) would otherwise hold the lease row's lock, and with it the
takeover of the mission, for as long as it stays frozen."""
CIPHER_TOPIC = "eventsourcing.cryptography:AESCipher"
SQLITE_SUFFIX = "-events.sqlite"
_TOPIC_PREFIX = "rustchain:"
CHECKPOINT_TOPIC = "rustchain-checkpoint"
CHECKPOINTS_PURPOSE = "checkpoints"
"""The table beside the events that keeps every signed checkpoint of the store's tenant logs."""
F = TypeVar("F")
FENCED_RECORDER_TOPIC = "rustchain.platform.storage.fenced_recorder:FencedPostgresProcessRecorder"
_STORE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class EventStoreError(RuntimeError):
    """The store refused or failed an operation; nothing was written."""


class ChainConflictError(EventStoreError):
    """Another writer appended to the same mission first; re-read and try again."""


@dataclass(frozen=True)
class Notification:
    """An event at its position in the store's notification log, as its canonical JSON."""

    position: int
    data: bytes

    @property
    def event(self) -> EventEnvelope:
        """The event, decoded and validated (CorruptHistoryError when it cannot be)."""
        return stored_event(self.data, f"at log position {self.position}")


def stored_event(data: bytes, where: str) -> EventEnvelope:
    """A stored event's envelope from its canonical JSON; CorruptHistoryError names `where`."""
    try:
        return decode_event(json.loads(data))
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "event"
        problem = f"{field}: {first['msg']}"
    except ValueError as error:  # not JSON, or not UTF-8
        problem = str(error)
    raise CorruptHistoryError(f"the stored event {where} is not a readable event: {problem}")


@dataclass(frozen=True)
class EventStoreSettings:
    """Which database a service's events live in, and whether they are encrypted at rest."""

    name: str
    home: Path
    database_url: str | None = None
    cipher_key: str | None = None
    session_name: str = "rustchain"
    """The `application_name` of its PostgreSQL sessions: `pg_stat_activity` then says which
    process (which replica) holds a lock or waits on one."""
    pool_size: int = DEFAULT_POOL_SIZE

    @classmethod
    def from_environ(
        cls, name: str, environ: Mapping[str, str] | None = None
    ) -> EventStoreSettings:
        """Settings from `RUSTCHAIN_HOME`, `RUSTCHAIN_DATABASE_URL`, `RUSTCHAIN_CIPHER_KEY`,
        `RUSTCHAIN_DATABASE_POOL_SIZE`."""
        env = os.environ if environ is None else environ
        return cls(
            name=name,
            home=rustchain_home(env),
            database_url=env.get(DATABASE_URL_VARIABLE) or None,
            cipher_key=env.get(CIPHER_KEY_VARIABLE) or None,
            session_name=f"rustchain {name} {replica_id(env)}",
            pool_size=_pool_size(env),
        )


def _pool_size(environ: Mapping[str, str]) -> int:
    text = environ.get(POOL_SIZE_VARIABLE) or str(DEFAULT_POOL_SIZE)
    if not text.isdigit() or int(text) < 1:
        raise EventStoreError(
            f"{POOL_SIZE_VARIABLE} must be a whole number of connections, at least 1, not {text!r}"
        )
    return int(text)


def replica_id(environ: Mapping[str, str]) -> str:
    """This process's name among its service's replicas: `RUSTCHAIN_EXECUTOR_ID`, else its host
    and pid."""
    return environ.get(EXECUTOR_ID_VARIABLE) or f"{socket.gethostname()}-{os.getpid()}"


def sqlite_path(settings: EventStoreSettings) -> Path:
    """The SQLite file of a store: `<home>/<name>-events.sqlite`."""
    return settings.home / f"{settings.name}{SQLITE_SUFFIX}"


def describe_store(settings: EventStoreSettings) -> str:
    """Which database a store lives in, for messages (never its password)."""
    if settings.database_url:
        parts = urlsplit(settings.database_url)
        return f"PostgreSQL at {parts.hostname}:{parts.port or 5432}{parts.path}"
    return f"SQLite at {sqlite_path(settings)}"


class EventStore(Protocol):
    """Where a service appends its events and a relay reads them back in commit order."""

    def append(
        self, drafts: Sequence[EventDraft], *, lease: LeaseWrite | None = None
    ) -> list[EventEnvelope]:
        """Seal the drafts into their missions' chains and commit them in one transaction; with
        `lease`, only while the mission's lease allows it (LeaseLostError), in that transaction."""

    def mission_events(self, tenant: str, mission_id: str) -> list[EventEnvelope]:
        """A mission's events in chain order, as stored."""

    def notifications(self, after: int, limit: int) -> list[Notification]:
        """Up to `limit` events committed after log position `after`, in log order."""

    def last_position(self) -> int:
        """The position of the last committed event (0 when empty)."""

    def tracked_position(self, reader: str) -> int:
        """The log position a reader has durably processed up to (0 when never)."""

    def track_position(self, reader: str, position: int) -> None:
        """Record that a reader has processed the log up to `position`."""

    def close(self) -> None:
        """Release the database connections."""


def stored_events(store: EventStore, page: int = 1000) -> Iterator[EventEnvelope]:
    """Every event of a store in commit order, read a page of the notification log at a time."""
    yield from (event for _, event in events_after(store, 0, page))


def mission_facts(
    store: EventStore, tenant: str, mission_id: str, family: FactFamily[F]
) -> list[Recorded[F]]:
    """A mission's facts of the family in chain order, each upcast and typed (the one way a
    reader sees what was recorded; CorruptHistoryError when one cannot be read)."""
    return family.read_all(store.mission_events(tenant, mission_id))


def facts_after(
    store: EventStore, position: int, family: FactFamily[F], page: int = 1000
) -> Iterator[tuple[int, Recorded[F]]]:
    """The family's facts committed after a log position, each with its position, upcast and
    typed, in commit order (events of other types are passed over)."""
    for at, event in events_after(store, position, page):
        if event.type in family:
            yield at, family.read(event)


def events_after(
    store: EventStore, position: int, page: int = 1000
) -> Iterator[tuple[int, EventEnvelope]]:
    """The events committed after a log position, each with its own position, in commit order."""
    while batch := store.notifications(position, page):
        yield from ((item.position, item.event) for item in batch)
        position = batch[-1].position


def _postgres_environment(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise EventStoreError(
            f"{DATABASE_URL_VARIABLE} must be a postgresql:// URL, not {parts.scheme or url!r}"
        )
    database = parts.path.lstrip("/")
    if not database or not parts.hostname:
        raise EventStoreError(f"{DATABASE_URL_VARIABLE} must name a host and a database")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(database),
        "POSTGRES_HOST": parts.hostname,
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_CONNECT_TIMEOUT": "5",
    }


def infrastructure_environment(settings: EventStoreSettings) -> dict[str, str]:
    """The `eventsourcing` environment that selects and configures the database."""
    if not _STORE_NAME.fullmatch(settings.name):
        raise EventStoreError(
            f"invalid event store name {settings.name!r}: expected 1-40 characters of"
            " a-z, 0-9 or '_', starting with a letter"
        )
    if settings.database_url:
        env = _postgres_environment(settings.database_url)
        env["POSTGRES_POOL_SIZE"] = str(settings.pool_size)
        env["POSTGRES_MAX_OVERFLOW"] = str(POOL_OVERFLOW)
        env["POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT"] = str(IDLE_IN_TRANSACTION_SECONDS)
        # Its inserts check a mission's lease in their transaction; it makes `<store>_leases`.
        env["PROCESS_RECORDER_TOPIC"] = FENCED_RECORDER_TOPIC
    else:
        path = sqlite_path(settings)
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    env["ORIGINATOR_ID_TYPE"] = "text"
    if settings.cipher_key:
        env["CIPHER_TOPIC"] = CIPHER_TOPIC
        env["CIPHER_KEY"] = settings.cipher_key
    return env


class RecorderEventStore:
    """An EventStore on an `eventsourcing` process recorder (events plus reader positions)."""

    def __init__(
        self,
        recorder: ProcessRecorder,
        cipher: Cipher | None,
        checkpoints: AggregateRecorder | None = None,
        artifacts: ArtifactStore | None = None,
    ) -> None:
        self._recorder = recorder
        self._artifacts = artifacts
        self._cipher = cipher
        self._checkpoints = checkpoints
        self._heads: dict[tuple[str, str], EventEnvelope] = {}

    @staticmethod
    def _stream(tenant: str, mission_id: str) -> str:
        return f"{tenant}/{mission_id}"

    def _encode(self, event: EventEnvelope) -> StoredEvent:
        state = event.to_json().encode("utf-8")
        if self._cipher is not None:
            state = self._cipher.encrypt(state)
        return StoredEvent(
            originator_id=self._stream(event.tenant, event.mission_id),
            originator_version=event.sequence,
            topic=_TOPIC_PREFIX + event.type,
            state=state,
        )

    def _plaintext(self, stored: StoredEvent) -> bytes:
        if self._cipher is not None:
            return self._cipher.decrypt(stored.state)
        return stored.state

    def _decode(self, stored: StoredEvent) -> EventEnvelope:
        where = f"{stored.originator_id} #{stored.originator_version}"
        return stored_event(self._plaintext(stored), where)

    def _head(self, key: tuple[str, str]) -> EventEnvelope | None:
        if key not in self._heads:
            last = self._recorder.select_events(self._stream(*key), desc=True, limit=1)
            if not last:
                return None
            self._heads[key] = self._decode(last[0])
        return self._heads[key]

    def append(
        self, drafts: Sequence[EventDraft], *, lease: LeaseWrite | None = None
    ) -> list[EventEnvelope]:
        """Seal the drafts into their missions' chains and commit them in one transaction; with
        `lease`, only while the mission's lease allows it (LeaseLostError), in that transaction.

        Only the PostgreSQL recorder checks a lease: on SQLite and in memory one process writes
        the store, and the lease is that process's own (`mission_leases.LocalMissionLeases`).
        """
        if not drafts:
            return []
        heads: dict[tuple[str, str], EventEnvelope] = {}
        for draft in drafts:
            head = heads.get(draft.chain_key) or self._head(draft.chain_key)
            if head is not None:
                heads[draft.chain_key] = head
        events = seal_all(list(drafts), heads)
        try:
            encoded = [self._encode(event) for event in events]
            if lease is None:
                self._recorder.insert_events(encoded)
            else:
                self._recorder.insert_events(encoded, lease=lease)
        except IntegrityError as error:
            for key in heads:
                self._heads.pop(key, None)
            raise ChainConflictError(
                f"another writer appended to one of these missions first: {error}"
            ) from error
        self._heads.update(heads)
        return events

    @property
    def recorder(self) -> ProcessRecorder:
        """The `eventsourcing` recorder the store writes through (its leases use its database)."""
        return self._recorder

    def mission_events(self, tenant: str, mission_id: str) -> list[EventEnvelope]:
        """A mission's events in chain order, as stored."""
        stored = self._recorder.select_events(self._stream(tenant, mission_id))
        return [self._decode(item) for item in stored]

    def notifications(self, after: int, limit: int) -> list[Notification]:
        """Up to `limit` events committed after log position `after`, in log order."""
        return [Notification(position, data) for position, data in self.log_rows(after, limit)]

    def log_rows(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        """The notifications as bare (position, canonical JSON) pairs: for readers of the whole
        log (an auditor's million events), who need no object per event."""
        rows = scan_states(self._recorder, after, limit)
        cipher = self._cipher
        if cipher is None:
            return rows
        return [(position, cipher.decrypt(state)) for position, state in rows]

    def last_position(self) -> int:
        """The position of the last committed event (0 when empty)."""
        return self._recorder.max_notification_id() or 0

    def tracked_position(self, reader: str) -> int:
        """The log position a reader has durably processed up to (0 when never)."""
        return self._recorder.max_tracking_id(reader) or 0

    def track_position(self, reader: str, position: int) -> None:
        """Record that a reader has processed the log up to `position`."""
        if position > self.tracked_position(reader):
            self._recorder.insert_tracking(Tracking(reader, position))

    def save_checkpoint(self, tenant: str, note: str) -> None:
        """Keep a signed checkpoint of the tenant's log (never encrypted: it is public)."""
        if self._checkpoints is None:
            raise EventStoreError("this store was opened without its checkpoint table")
        last = self._checkpoints.select_events(tenant, desc=True, limit=1)
        version = last[0].originator_version + 1 if last else 1
        stored = StoredEvent(tenant, version, CHECKPOINT_TOPIC, note.encode("utf-8"))
        try:
            self._checkpoints.insert_events([stored])
        except IntegrityError as error:
            raise EventStoreError(f"another writer saved a checkpoint first: {error}") from error

    def checkpoint_notes(self, tenant: str) -> list[str]:
        """Every checkpoint kept for the tenant's log, oldest first, as signed-note text."""
        if self._checkpoints is None:
            return []
        return [row.state.decode("utf-8") for row in self._checkpoints.select_events(tenant)]

    @property
    def artifacts(self) -> ArtifactStore:
        """The artifacts the store's events reference, kept in the same database."""
        if self._artifacts is None:
            raise EventStoreError("this store was opened without its artifact table")
        return self._artifacts

    def close(self) -> None:
        """Release the database connections."""
        datastore = getattr(self._recorder, "datastore", None)
        if datastore is not None:
            datastore.close()


def open_event_store(settings: EventStoreSettings) -> RecorderEventStore:
    """The event store the settings name, its tables created if missing."""
    environment = Environment(name=settings.name, env=infrastructure_environment(settings))
    if not settings.database_url:
        # Made 0600 before SQLite opens it; its -wal and -shm files take the same mode.
        private_file(sqlite_path(settings))
    making_tables = (
        schema_lock(settings.database_url) if settings.database_url else contextlib.nullcontext()
    )
    with making_tables:
        factory = InfrastructureFactory.construct(environment)
        if isinstance(factory, PostgresFactory) and isinstance(factory.datastore.pool.kwargs, dict):
            # Before the first connection (the tables are made next), so every session has it.
            factory.datastore.pool.kwargs["application_name"] = settings.session_name[:63]
        recorder = factory.process_recorder()
        cipher = factory.cipher()
        artifacts = SqlArtifactStore(
            getattr(recorder, "datastore"),  # noqa: B009 - both recorders have one; not in the ABC
            settings.name,
            postgres=settings.database_url is not None,
            cipher=cipher,
        )
        checkpoints = factory.aggregate_recorder(CHECKPOINTS_PURPOSE)
    return RecorderEventStore(recorder, cipher, checkpoints, artifacts)


def artifacts_beside(store: EventStore) -> ArtifactStore:
    """The artifact store in the same database as an event store."""
    if isinstance(store, RecorderEventStore):
        return store.artifacts
    raise EventStoreError("this event store keeps no artifacts: pass an artifact store")


def in_memory_event_store() -> RecorderEventStore:
    """An event store held in this process only: for replays and tests, never for a deployment."""
    # The same adapter on eventsourcing's plain-Python recorders: the same chain sealing and
    # conflict refusal as on SQLite or PostgreSQL, with nothing written anywhere.
    return RecorderEventStore(
        POPOProcessRecorder(), None, POPOAggregateRecorder(), HeldArtifactStore()
    )


def new_cipher_key() -> str:
    """A fresh random 256-bit key for `RUSTCHAIN_CIPHER_KEY` (base64)."""
    from eventsourcing.cryptography import AESCipher

    return AESCipher.create_key(32)
