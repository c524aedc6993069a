"""Proving a tenant's log in each store against signed checkpoints, and locating the damage.

Every checkpoint the auditor can trust (a saved one, and those kept in the store, each signed by
the deployment's checkpoint key) commits to the root of a prefix of the log. The log extends a
checkpoint when the root of its first `size` leaves is the checkpoint's root (the auditor holds
every leaf, so this is the consistency check itself, in O(log n) per checkpoint once the tree is
built). The first position that differs lies after the largest checkpoint that still holds and
no later than the smallest one that fails: with checkpoints every event it is exact.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rustchain.domain.events.checkpoint import Checkpoint
from rustchain.domain.events.merkle_log import LEAF_PREFIX, MerkleTree, leaf_hash
from rustchain.platform.storage.checkpoints import LogEntry, signed_checkpoints
from rustchain.platform.storage.event_store import RecorderEventStore

PAGE = 5000
"""Events read from a store per query."""


@dataclass
class TenantLog:
    """One tenant's log in one store: its leaves and the event at each position.

    The events are kept column by column (ids, missions, hashes), not as an object each: an
    auditor reads a million of them, and only messages and exports look at one.
    """

    store: str
    tenant: str
    tree: MerkleTree = field(default_factory=MerkleTree)
    event_ids: list[str] = field(default_factory=list)
    mission_ids: list[str] = field(default_factory=list)
    hashes: list[bytes] = field(default_factory=list)
    """Each event's SHA-256 `hash`: the data of its leaf."""

    def add(self, entry: LogEntry) -> None:
        """Append the next event of the log."""
        self.tree.append_hash(leaf_hash(entry.hash))
        self.event_ids.append(entry.event_id)
        self.mission_ids.append(entry.mission_id)
        self.hashes.append(entry.hash)

    @property
    def entries(self) -> list[LogEntry]:
        """Every event of the log, in order."""
        return [
            LogEntry(self.tenant, event_id, mission_id, digest)
            for event_id, mission_id, digest in zip(
                self.event_ids, self.mission_ids, self.hashes, strict=True
            )
        ]

    def at(self, position: int) -> str:
        """Which event holds a 1-based position today, for messages."""
        if not 1 <= position <= len(self.event_ids):
            return "no event (the log is shorter)"
        index = position - 1
        return f"event {self.event_ids[index]} of mission {self.mission_ids[index]}"

    def position_of(self, event_id: str) -> int | None:
        """The 1-based position of an event, or None when it is not in the log."""
        try:
            return self.event_ids.index(event_id) + 1
        except ValueError:
            return None


def read_tenant_log(store: RecorderEventStore, name: str, tenant: str) -> TenantLog:
    """The tenant's log in a store, from its notification log.

    One pass over the rows, reading the four fields a leaf needs from each event's canonical JSON
    (as `log_entry` does, without building an object per event); the tree is then built a level
    at a time.
    """
    event_ids: list[str] = []
    mission_ids: list[str] = []
    hashes: list[bytes] = []
    loads, from_hex = orjson.loads, bytes.fromhex
    position = 0
    while rows := store.log_rows(position, PAGE):
        for _, data in rows:
            document = loads(data)
            if document["tenant"] == tenant:
                event_ids.append(document["id"])
                mission_ids.append(document["mission_id"])
                hashes.append(from_hex(document["hash"]))
        position = rows[-1][0]
    sha256 = hashlib.sha256
    tree = MerkleTree()
    tree.extend_hashes([sha256(LEAF_PREFIX + digest).digest() for digest in hashes])
    return TenantLog(name, tenant, tree, event_ids, mission_ids, hashes)


def kept_checkpoints(
    store: RecorderEventStore, name: str, tenant: str, key: Ed25519PublicKey
) -> list[Checkpoint]:
    """The checkpoints kept in the store for the tenant's log and signed by `key`."""
    return [
        checkpoint
        for checkpoint in signed_checkpoints(store.checkpoint_notes(tenant), key)
        if checkpoint.store == name and checkpoint.tenant == tenant
    ]


@dataclass(frozen=True)
class LogProof:
    """What was proven of a tenant's log: up to which position, and what fails."""

    store: str
    tenant: str
    size: int
    proven: int
    """The largest checkpoint size the log was proven to extend (0 when none)."""
    problems: list[str]


def _holds(log: TenantLog, checkpoint: Checkpoint) -> bool:
    return checkpoint.size <= log.tree.size and log.tree.root(checkpoint.size) == checkpoint.root


def prove_log(log: TenantLog, checkpoints: Iterable[Checkpoint]) -> LogProof:
    """Check the log extends every checkpoint; locate the first position that differs."""
    ordered = sorted(checkpoints, key=lambda c: (c.size, c.time))
    good = 0
    problems: list[str] = []
    for checkpoint in ordered:
        if _holds(log, checkpoint):
            good = max(good, checkpoint.size)
            continue
        size = log.tree.size
        where = f"{log.store} store, tenant {log.tenant}"
        if checkpoint.size > size and good == size:
            latest = ordered[-1]
            problems.append(
                f"{where}: the log ends at position {size} but a checkpoint signed"
                f" {latest.time:%Y-%m-%d %H:%M:%S} holds {latest.size}: positions"
                f" {size + 1}..{latest.size} were deleted"
            )
            break
        # A shorter log may differ first at the position just past its end.
        last = min(checkpoint.size, size + 1)
        first = good + 1
        located = (
            f"first position that differs: {first} ({log.at(first)})"
            if first >= last
            else f"first position that differs: between {first} and {last} (today"
            f" {first} is {log.at(first)})"
        )
        missing = checkpoint.size - size
        fewer = f" (the log holds {missing} event(s) fewer)" if missing > 0 else ""
        problems.append(
            f"{where}: the log does not extend the checkpoint of size {checkpoint.size}{fewer}"
            f" signed {checkpoint.time:%Y-%m-%d %H:%M:%S}: an event up to it was deleted,"
            f" reordered or rewritten; {located}"
        )
        break
    return LogProof(log.store, log.tenant, log.tree.size, good, problems)
