"""The in-memory event store that replays run on keeps the stores' contract: chains per mission,
one writer per chain version, all of a batch or nothing, the log in commit order."""

from __future__ import annotations

import pytest
from eventsourcing.popo import POPOProcessRecorder

from rustchain.domain.events.chain import verify_chain
from rustchain.platform.storage.event_store import (
    ChainConflictError,
    RecorderEventStore,
    in_memory_event_store,
)
from tests.integration.event_helpers import make_draft


def test_appended_events_are_chained_per_mission_and_read_back_whole() -> None:
    store = in_memory_event_store()

    appended = store.append([make_draft(n, "m1" if n % 3 else "m2") for n in range(1, 31)])

    m1 = store.mission_events("acme", "m1")
    assert [e.sequence for e in m1] == list(range(1, 21))
    assert verify_chain(m1) is None
    assert m1 == [e for e in appended if e.mission_id == "m1"]
    assert [n.event for n in store.notifications(after=0, limit=100)] == appended


def test_a_stale_writer_cannot_fork_a_chain_and_its_batch_writes_nothing() -> None:
    recorder = POPOProcessRecorder()
    store, other = RecorderEventStore(recorder, None), RecorderEventStore(recorder, None)
    store.append([make_draft(1)])
    # Another writer on the same records appends first (another process, in a real store).
    other.append([make_draft(2)])

    with pytest.raises(ChainConflictError):
        store.append([make_draft(1, "m9"), make_draft(2)])

    assert store.mission_events("acme", "m9") == []
    assert [e.sequence for e in store.mission_events("acme", "m1")] == [1, 2]
