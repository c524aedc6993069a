"""Checkpoint figures (issue 12): signing, consistency and inclusion proofs on logs of 100,000
and 1,000,000 events, and proving a tenant's log read from a real SQLite store (100,000 events,
and 1,000,000: goal at least 100,000 events/s), beside the way it was read before."""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rustchain.audit.log_proofs import TenantLog, prove_log, read_tenant_log
from rustchain.domain.events.checkpoint import Checkpoint
from rustchain.domain.events.envelope import EventDraft
from rustchain.domain.events.merkle_log import MerkleTree, verify_consistency, verify_inclusion
from rustchain.platform.storage.checkpoints import (
    Checkpointer,
    check_signature,
    log_entry,
    sign_checkpoint,
)
from rustchain.platform.storage.event_store import (
    EventStoreSettings,
    RecorderEventStore,
    open_event_store,
    sqlite_path,
)

SIZES = (100_000, 1_000_000)
REPEATS = 2_000
STORE_EVENTS = 100_000
LARGE_LOG = 1_000_000
GOAL = 100_000


def _tree(size: int) -> tuple[MerkleTree, float]:
    started = time.perf_counter()
    tree = MerkleTree(hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(size))
    return tree, time.perf_counter() - started


def _per_call(function: object, repeats: int = REPEATS) -> float:
    """Microseconds per call of a no-argument callable."""
    assert callable(function)
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats * 1e6


def _log_figures(size: int, key: Ed25519PrivateKey) -> None:
    tree, built = _tree(size)
    old = size // 2 + 17
    old_root, root = tree.root(old), tree.root()
    checkpoint = Checkpoint("executor", "bench", size, root, datetime.now(UTC))
    signing = _per_call(lambda: sign_checkpoint(key, checkpoint))
    signed = sign_checkpoint(key, checkpoint)
    checking = _per_call(lambda: check_signature(signed, key.public_key()))
    proof = tree.consistency_proof(old)
    consistency = _per_call(
        lambda: verify_consistency(old, old_root, size, root, tree.consistency_proof(old))
    )
    index = size // 3
    inclusion = _per_call(
        lambda: verify_inclusion(
            tree.leaf(index), index, size, tree.inclusion_proof(index), tree.root()
        )
    )
    print(
        f"checkpoints, log of {size:,} events: tree built at {size / built:,.0f} leaves/s;"
        f" sign {signing:,.0f} µs, check signature {checking:,.0f} µs; consistency proof"
        f" {old:,}->{size:,} ({len(proof)} hashes) made + verified {consistency:,.0f} µs;"
        f" inclusion proof made + verified {inclusion:,.0f} µs"
    )


def _drafts(count: int) -> list[EventDraft]:
    """`count` executor events of one tenant in missions of 100 events."""
    now = datetime.now(UTC)
    return [
        EventDraft(
            id=str(uuid.uuid4()),
            tenant="acme",
            mission_id=f"m{i // 100}",
            service="executor",
            aggregate_id=f"m{i // 100}",
            aggregate_version=i % 100 + 1,
            type="StepSucceeded",
            occurred_at=now,
            payload={"step_id": f"s{i % 100}", "attempt": 1, "output": "ok"},
        )
        for i in range(count)
    ]


def _read_with_an_object_per_event(store: RecorderEventStore, tenant: str) -> TenantLog:
    """The baseline: how read_tenant_log read a log before (a Notification and a LogEntry per
    event, one tree append per leaf)."""
    result = TenantLog("executor", tenant)
    position = 0
    while batch := store.notifications(position, 5000):
        for item in batch:
            entry = log_entry(item.data)
            if entry.tenant == tenant:
                result.add(entry)
        position = batch[-1].position
    return result


def _verify_rate(read: Callable[[], TenantLog], signed: list[Checkpoint], size: int) -> float:
    started = time.perf_counter()
    proof = prove_log(read(), signed)
    rate = size / (time.perf_counter() - started)
    assert not proof.problems and proof.size == size and proof.proven == STORE_EVENTS
    return rate


def _grow(settings: EventStoreSettings, copies: int) -> None:
    """Copy the store's rows `copies` times under other mission ids: a log of the same tenant
    `copies + 1` times as long, written by SQL because sealing a million events takes minutes."""
    with closing(sqlite3.connect(sqlite_path(settings))) as database, database:
        for copy in range(1, copies + 1):
            database.execute(
                "INSERT INTO stored_events SELECT originator_id || ?, originator_version, topic,"
                " state FROM stored_events WHERE rowid <= ? ORDER BY rowid",
                (f"/copy{copy}", STORE_EVENTS),
            )


def _store_figures(key: Ed25519PrivateKey) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        settings = EventStoreSettings(name="executor", home=Path(scratch))
        store = open_event_store(settings)
        try:
            drafts = _drafts(STORE_EVENTS)
            for start in range(0, STORE_EVENTS, 5000):
                store.append(drafts[start : start + 5000])
            started = time.perf_counter()
            signed = Checkpointer(store, "executor", key).advance()
            checkpointing = STORE_EVENTS / (time.perf_counter() - started)
            before = _verify_rate(
                lambda: _read_with_an_object_per_event(store, "acme"), signed, STORE_EVENTS
            )
            small = _verify_rate(
                lambda: read_tenant_log(store, "executor", "acme"), signed, STORE_EVENTS
            )
            _grow(settings, LARGE_LOG // STORE_EVENTS - 1)
            large = _verify_rate(
                lambda: read_tenant_log(store, "executor", "acme"), signed, LARGE_LOG
            )
        finally:
            store.close()
    print(
        f"checkpoints, {STORE_EVENTS:,} events in a SQLite store: first checkpoint (read whole"
        f" log) {checkpointing:,.0f} events/s"
    )
    print(
        f"audit verify --checkpoint (read + tree + proof), {STORE_EVENTS:,} events:"
        f" {small:,.0f} events/s; before (an object per event, a tree append per leaf):"
        f" {before:,.0f} events/s"
    )
    verdict = "meets the goal" if large >= GOAL else "MISSES the goal"
    print(
        f"audit verify --checkpoint, a log of {LARGE_LOG:,} events (its first {STORE_EVENTS:,}"
        f" signed; rows copied): {large:,.0f} events/s; goal >= {GOAL:,} events/s: {verdict}"
    )


def main() -> None:
    """Print checkpoint signing, proof and store-proving figures."""
    key = Ed25519PrivateKey.generate()
    for size in SIZES:
        _log_figures(size, key)
    _store_figures(key)


if __name__ == "__main__":
    main()
