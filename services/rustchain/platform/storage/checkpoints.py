"""Signing and keeping checkpoints of every tenant's log in a store (docs/audit.md, Checkpoints).

A tenant's log in a store is its events in the store's notification order: the event at position
p (1-based) is leaf p-1, and a leaf's data is the event's SHA-256 `hash` (which covers the whole
event). Positions are derived, never written, so they are assigned in the very transaction that
appends the event, on SQLite and PostgreSQL alike, and deleting or reordering a row moves every
later position, which a checkpoint signed before that proves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from rustchain.domain.events.checkpoint import Checkpoint, CheckpointError, key_id, parse_checkpoint
from rustchain.domain.events.merkle_log import LogFrontier, leaf_hash
from rustchain.platform.storage.event_store import Notification

log = logging.getLogger(__name__)

EVERY_EVENTS_VARIABLE = "RUSTCHAIN_CHECKPOINT_EVERY_EVENTS"
EVERY_SECONDS_VARIABLE = "RUSTCHAIN_CHECKPOINT_SECONDS"


class CheckpointStore(Protocol):
    """A store's notification log and the checkpoints kept beside it."""

    def notifications(self, after: int, limit: int) -> list[Notification]:
        """Up to `limit` events committed after log position `after`, in log order."""

    def save_checkpoint(self, tenant: str, note: str) -> None:
        """Keep a signed checkpoint of the tenant's log."""

    def checkpoint_notes(self, tenant: str) -> list[str]:
        """Every checkpoint kept for the tenant's log, oldest first."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One event as a leaf of its tenant's log."""

    tenant: str
    event_id: str
    mission_id: str
    hash: bytes


def log_entry(data: bytes) -> LogEntry:
    """The leaf an event's canonical JSON makes (read without validating the whole event)."""
    document = orjson.loads(data)
    return LogEntry(
        document["tenant"], document["id"], document["mission_id"], bytes.fromhex(document["hash"])
    )


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    """The 32 bytes of an Ed25519 public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def sign_checkpoint(key: Ed25519PrivateKey, unsigned: Checkpoint) -> Checkpoint:
    """The checkpoint with its signature by `key`."""
    return Checkpoint(
        unsigned.store,
        unsigned.tenant,
        unsigned.size,
        unsigned.root,
        unsigned.time,
        key.sign(unsigned.body()),
        key_id(raw_public_key(key.public_key())),
    )


def check_signature(checkpoint: Checkpoint, key: Ed25519PublicKey) -> None:
    """Return when `key` signed the checkpoint; else CheckpointError saying why not."""
    if checkpoint.signer != key_id(raw_public_key(key)):
        raise CheckpointError(
            f"checkpoint of {checkpoint.origin} is signed by another key than the deployment's"
            " checkpoint key"
        )
    try:
        key.verify(checkpoint.signature, checkpoint.body())
    except InvalidSignature:
        raise CheckpointError(
            f"checkpoint of {checkpoint.origin}: the signature does not match its text"
        ) from None


def signed_checkpoints(notes: list[str], key: Ed25519PublicKey) -> list[Checkpoint]:
    """The notes that are checkpoints signed by `key`, in order; others are left out."""
    kept: list[Checkpoint] = []
    for note in notes:
        try:
            checkpoint = parse_checkpoint(note)
            check_signature(checkpoint, key)
        except CheckpointError as error:
            log.warning("ignoring a kept checkpoint: %s", error)
            continue
        kept.append(checkpoint)
    return kept


@dataclass(frozen=True)
class CheckpointSettings:
    """How often a store's tenant logs are checkpointed: after N events or S seconds."""

    every_events: int = 1000
    every_seconds: float = 60.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> CheckpointSettings:
        """From RUSTCHAIN_CHECKPOINT_EVERY_EVENTS and RUSTCHAIN_CHECKPOINT_SECONDS."""
        env = os.environ if environ is None else environ
        try:
            events = int(env.get(EVERY_EVENTS_VARIABLE) or cls.every_events)
            seconds = float(env.get(EVERY_SECONDS_VARIABLE) or cls.every_seconds)
        except ValueError:
            raise ValueError(
                f"{EVERY_EVENTS_VARIABLE} must be a whole number and {EVERY_SECONDS_VARIABLE}"
                " a number of seconds"
            ) from None
        if events < 1 or seconds <= 0:
            raise ValueError(f"{EVERY_EVENTS_VARIABLE} and {EVERY_SECONDS_VARIABLE} must be > 0")
        return cls(events, seconds)


@dataclass
class _TenantLog:
    frontier: LogFrontier = field(default_factory=LogFrontier)
    last: Checkpoint | None = None
    confirmed: bool = False
    """Whether the log has been seen to extend `last` (always before signing after it)."""


def _now() -> datetime:
    return datetime.now(UTC)


class Checkpointer:
    """Follows a store's notification log and signs each tenant's checkpoints when due.

    It never signs a log that does not extend the last checkpoint kept for it: a store whose
    events were deleted or rewritten behind its back gets no new checkpoint (the refusal is
    logged and kept in `refused`), so tampering cannot be laundered by a fresh signature.
    """

    def __init__(
        self,
        store: CheckpointStore,
        store_name: str,
        key: Ed25519PrivateKey,
        settings: CheckpointSettings | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._store = store
        self._name = store_name
        self._key = key
        self._settings = settings or CheckpointSettings()
        self._clock = clock
        self._position = 0
        self._logs: dict[str, _TenantLog] = {}
        self.refused: dict[str, str] = {}

    def _log(self, tenant: str) -> _TenantLog:
        if tenant not in self._logs:
            kept = signed_checkpoints(self._store.checkpoint_notes(tenant), self._key.public_key())
            last = kept[-1] if kept else None
            self._logs[tenant] = _TenantLog(last=last, confirmed=last is None or last.size == 0)
        return self._logs[tenant]

    def _append(self, entry: LogEntry) -> None:
        state = self._log(entry.tenant)
        state.frontier.append_hash(leaf_hash(entry.hash))
        last = state.last
        if state.confirmed or last is None or state.frontier.size != last.size:
            return
        if state.frontier.root() == last.root:
            state.confirmed = True
        elif entry.tenant not in self.refused:
            self.refused[entry.tenant] = (
                f"the {self._name} store's log of tenant {entry.tenant} no longer extends its"
                f" checkpoint of size {last.size}: events were deleted, reordered or rewritten"
            )
            log.error("not signing: %s", self.refused[entry.tenant])

    def _due(self, state: _TenantLog, now: datetime) -> bool:
        last = state.last
        pending = state.frontier.size - (last.size if last else 0)
        if pending <= 0 or not state.confirmed:
            return False
        if last is None or pending >= self._settings.every_events:
            return True
        return (now - last.time).total_seconds() >= self._settings.every_seconds

    def advance(self, page: int = 5000) -> list[Checkpoint]:
        """Read the events committed since the last call; sign, keep and return due checkpoints."""
        while batch := self._store.notifications(self._position, page):
            for item in batch:
                self._append(log_entry(item.data))
            self._position = batch[-1].position
        now = self._clock()
        signed: list[Checkpoint] = []
        for tenant, state in self._logs.items():
            if tenant in self.refused or not self._due(state, now):
                continue
            unsigned = Checkpoint(
                self._name, tenant, state.frontier.size, state.frontier.root(), now
            )
            checkpoint = sign_checkpoint(self._key, unsigned)
            self._store.save_checkpoint(tenant, checkpoint.note())
            state.last = checkpoint
            signed.append(checkpoint)
        return signed


Publish = Callable[[list[Checkpoint]], Awaitable[None]]


async def checkpoint_periodically(
    checkpointer: Checkpointer, stop: asyncio.Event, period: float, publish: Publish
) -> None:
    """Every `period` seconds until `stop` is set (and once more), sign what is due and publish
    it (after it is kept in the store, so a publish never runs ahead of the store)."""
    while not stop.is_set():
        await publish(await asyncio.to_thread(checkpointer.advance))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), period)
    await publish(await asyncio.to_thread(checkpointer.advance))
