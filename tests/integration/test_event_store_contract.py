"""One contract for every event store: SQLite and PostgreSQL behave the same."""

from __future__ import annotations

import dataclasses

import pytest

from rustchain.domain.events.chain import verify_chain
from rustchain.platform.storage.event_store import (
    ChainConflictError,
    EventStoreSettings,
    RecorderEventStore,
    new_cipher_key,
    open_event_store,
)
from tests.integration.event_helpers import make_draft


def test_appended_events_are_chained_per_mission_and_read_back_whole(
    store: RecorderEventStore,
) -> None:
    drafts = [make_draft(n, "m1" if n % 3 else "m2") for n in range(1, 31)]

    appended = store.append(drafts)

    assert [e.id for e in appended] == [d.id for d in drafts]
    m1 = store.mission_events("acme", "m1")
    m2 = store.mission_events("acme", "m2")
    assert [e.sequence for e in m1] == list(range(1, 21))
    assert [e.sequence for e in m2] == list(range(1, 11))
    assert verify_chain(m1) is None
    assert verify_chain(m2) is None
    assert m1 == [e for e in appended if e.mission_id == "m1"]


def test_later_appends_continue_the_chain_even_from_a_new_store_object(
    store: RecorderEventStore, store_settings: EventStoreSettings
) -> None:
    store.append([make_draft(1), make_draft(2)])
    reopened = open_event_store(store_settings)
    try:
        reopened.append([make_draft(3)])
        events = reopened.mission_events("acme", "m1")
    finally:
        reopened.close()

    assert [e.sequence for e in events] == [1, 2, 3]
    assert verify_chain(events) is None


def test_two_writers_cannot_fork_a_mission_chain(
    store: RecorderEventStore, store_settings: EventStoreSettings
) -> None:
    store.append([make_draft(1)])
    other = open_event_store(store_settings)
    try:
        other.append([make_draft(2)])
        with pytest.raises(ChainConflictError):
            store.append([make_draft(2)])
        store.append([make_draft(3)])
        events = store.mission_events("acme", "m1")
    finally:
        other.close()

    assert [e.sequence for e in events] == [1, 2, 3]
    assert verify_chain(events) is None


def test_failed_batch_writes_nothing(
    store: RecorderEventStore, store_settings: EventStoreSettings
) -> None:
    store.append([make_draft(1)])
    other = open_event_store(store_settings)
    try:
        other.append([make_draft(2)])
    finally:
        other.close()

    with pytest.raises(ChainConflictError):
        store.append([make_draft(1, "m9"), make_draft(2)])

    assert store.mission_events("acme", "m9") == []


def test_notification_log_lists_events_after_a_position_in_commit_order(
    store: RecorderEventStore,
) -> None:
    appended = store.append([make_draft(n, f"m{n % 4}") for n in range(1, 101)])

    first = store.notifications(after=0, limit=40)
    rest = store.notifications(after=first[-1].position, limit=1000)

    assert [n.event for n in first + rest] == appended
    positions = [n.position for n in first + rest]
    assert positions == sorted(positions)
    assert store.last_position() == positions[-1]
    assert store.notifications(after=positions[-1], limit=10) == []
    assert store.append([]) == []
    assert store.last_position() == positions[-1]


def test_reader_position_is_durable_and_never_goes_back(
    store: RecorderEventStore, store_settings: EventStoreSettings
) -> None:
    assert store.tracked_position("relay") == 0
    store.track_position("relay", 7)
    store.track_position("relay", 5)
    store.track_position("other", 2)
    reopened = open_event_store(store_settings)
    try:
        assert reopened.tracked_position("relay") == 7
        assert reopened.tracked_position("other") == 2
    finally:
        reopened.close()


def test_encrypted_store_keeps_no_plaintext_and_reads_back(
    store_settings: EventStoreSettings,
) -> None:
    settings = dataclasses.replace(store_settings, cipher_key=new_cipher_key())
    store = open_event_store(settings)
    try:
        appended = store.append([make_draft(1, payload={"secret": "hunter2-plaintext"})])
        raw = store._recorder.select_events("acme/m1")  # the bytes as stored
        events = store.mission_events("acme", "m1")
    finally:
        store.close()

    assert b"hunter2-plaintext" not in raw[0].state
    assert events == appended


def test_plain_store_does_hold_the_payload_as_written(store: RecorderEventStore) -> None:
    store.append([make_draft(1, payload={"secret": "hunter2-plaintext"})])

    assert b"hunter2-plaintext" in store._recorder.select_events("acme/m1")[0].state
