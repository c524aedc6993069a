"""Checkpoint figures (issue 12): signing, consistency and inclusion proofs on logs of 100,000
and 1,000,000 events, and proving a tenant's log read from a real SQLite store."""

from __future__ import annotations

import hashlib
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rustchain.audit.log_proofs import prove_log, read_tenant_log
from rustchain.domain.events.checkpoint import Checkpoint
from rustchain.domain.events.envelope import EventDraft
from rustchain.domain.events.merkle_log import MerkleTree, verify_consistency, verify_inclusion
from rustchain.platform.storage.checkpoints import Checkpointer, check_signature, sign_checkpoint
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store

SIZES = (100_000, 1_000_000)
REPEATS = 2_000
STORE_EVENTS = 100_000


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
            checkpointing = time.perf_counter() - started
            started = time.perf_counter()
            log = read_tenant_log(store, "executor", "acme")
            proof = prove_log(log, signed)
            proving = time.perf_counter() - started
        finally:
            store.close()
    assert not proof.problems and proof.proven == STORE_EVENTS
    print(
        f"checkpoints, {STORE_EVENTS:,} events in a SQLite store: first checkpoint (read whole"
        f" log) {STORE_EVENTS / checkpointing:,.0f} events/s; audit verify --checkpoint (read +"
        f" tree + proof) {STORE_EVENTS / proving:,.0f} events/s"
    )


def main() -> None:
    """Print checkpoint signing, proof and store-proving figures."""
    key = Ed25519PrivateKey.generate()
    for size in SIZES:
        _log_figures(size, key)
    _store_figures(key)


if __name__ == "__main__":
    main()
