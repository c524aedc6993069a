"""Checkpoint notes round-trip and are checked; a relay's checkpointer signs when due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rustchain.domain.events.checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from rustchain.domain.events.merkle_log import MerkleTree
from rustchain.platform.storage.checkpoints import (
    Checkpointer,
    CheckpointSettings,
    check_signature,
    sign_checkpoint,
)
from rustchain.platform.storage.event_store import Notification

KEY = Ed25519PrivateKey.generate()
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _signed(size: int = 3) -> Checkpoint:
    root = MerkleTree([bytes(32)] * size).root()
    return sign_checkpoint(KEY, Checkpoint("executor", "acme", size, root, T0))


def test_a_signed_note_reads_back_as_the_same_checkpoint_and_its_signature_holds() -> None:
    checkpoint = _signed()
    note = checkpoint.note()

    assert note.startswith("rustchain/executor/acme\n3\n")
    assert "\n\n\u2014 rustchain-checkpoint " in note
    assert parse_checkpoint(note) == checkpoint
    check_signature(parse_checkpoint(note), KEY.public_key())


def test_a_note_whose_size_was_edited_fails_its_signature() -> None:
    note = _signed(3).note().replace("\n3\n", "\n2\n", 1)

    with pytest.raises(CheckpointError, match="signature does not match"):
        check_signature(parse_checkpoint(note), KEY.public_key())


@pytest.mark.parametrize(
    "text",
    ["", "rustchain/executor/acme\n3\n", "other/executor/acme\n3\nAAAA\ntime x\n\n\u2014 k x\n"],
)
def test_text_that_is_not_a_checkpoint_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(CheckpointError):
        parse_checkpoint(text)


class FakeCheckpointStore:
    """A notification log in memory, and the notes kept beside it."""

    def __init__(self) -> None:
        self.log: list[Notification] = []
        self.notes: dict[str, list[str]] = {}

    def add(self, count: int) -> None:
        for _ in range(count):
            n = len(self.log) + 1
            data = (
                f'{{"tenant": "acme", "id": "e{n}", "mission_id": "m", "hash": "{n:064x}"}}'
            ).encode()
            self.log.append(Notification(n, data))

    def notifications(self, after: int, limit: int) -> list[Notification]:
        return self.log[after : after + limit]

    def save_checkpoint(self, tenant: str, note: str) -> None:
        self.notes.setdefault(tenant, []).append(note)

    def checkpoint_notes(self, tenant: str) -> list[str]:
        return list(self.notes.get(tenant, []))


def test_a_checkpoint_is_signed_after_n_events_or_s_seconds_whichever_comes_first() -> None:
    store, now = FakeCheckpointStore(), [T0]
    checkpointer = Checkpointer(
        store, "executor", KEY, CheckpointSettings(every_events=5, every_seconds=60), lambda: now[0]
    )
    store.add(2)
    first = checkpointer.advance()  # the first checkpoint of a log is signed at once
    store.add(4)
    early = checkpointer.advance()
    store.add(1)
    by_count = checkpointer.advance()
    store.add(1)
    now[0] = T0 + timedelta(seconds=61)
    by_time = checkpointer.advance()
    idle = checkpointer.advance()

    assert [c.size for c in first] == [2]
    assert early == []
    assert [c.size for c in by_count] == [7]
    assert [c.size for c in by_time] == [8]
    assert idle == []
    assert len(store.notes["acme"]) == 3
