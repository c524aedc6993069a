"""Signed checkpoints of each tenant's log catch an attacker who rewrites a store, on both stores.

The attacker has write access to the database: they delete, reorder or alter events and re-seal
every later hash, so each mission's chain is whole again. A checkpoint signed before proves it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rustchain.audit.log_files import LogFileError, checkpoint_document, read_checkpoint_file
from rustchain.audit.log_proofs import kept_checkpoints, prove_log, read_tenant_log
from rustchain.domain.events.checkpoint import Checkpoint, parse_checkpoint
from rustchain.domain.events.envelope import EventDraft
from rustchain.domain.runs.audit import verify_history
from rustchain.platform.storage.checkpoints import Checkpointer, CheckpointSettings
from rustchain.platform.storage.event_store import (
    EventStoreSettings,
    RecorderEventStore,
    open_event_store,
    sqlite_path,
    stored_events,
)
from tests.integration.event_helpers import make_draft

KEY = Ed25519PrivateKey.generate()
TENANT = "acme"
# acme's log, position by position: three missions interleaved, and another tenant between.
LAYOUT = ["m1", "m2", "m1", "m3", "m2", "m1", "m3", "m2", "m1", "m3", "m2", "m1"]


class Clock:
    """A clock the test moves: each checkpoint gets its own second."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def _drafts() -> list[EventDraft]:
    counts: dict[str, int] = {}
    drafts = []
    for mission in LAYOUT:
        counts[mission] = counts.get(mission, 0) + 1
        drafts.append(make_draft(counts[mission], mission, TENANT))
        drafts.append(make_draft(counts[mission], mission, "other"))
    return drafts


def _record(store: RecorderEventStore, name: str) -> list[EventDraft]:
    """Append acme's events one commit at a time, checkpointing after each: the honest past."""
    checkpointer = Checkpointer(store, name, KEY, CheckpointSettings(every_events=1), Clock())
    drafts = _drafts()
    for draft in drafts:
        store.append([draft])
        checkpointer.advance()
    return drafts


def _rewrite(settings: EventStoreSettings, drafts: list[EventDraft]) -> None:
    """The attacker empties the events table and appends `drafts` anew: every hash re-sealed."""
    if settings.database_url:
        with psycopg.connect(settings.database_url, autocommit=True) as connection:
            connection.execute(f"DELETE FROM {settings.name}_events")
    else:
        with sqlite3.connect(sqlite_path(settings)) as database:
            database.execute("DELETE FROM stored_events")
        database.close()
    store = open_event_store(settings)
    try:
        store.append(drafts)
    finally:
        store.close()


def _reseq(drafts: list[EventDraft]) -> list[EventDraft]:
    """Renumber each mission's versions so the re-sealed chains look whole."""
    counts: dict[tuple[str, str], int] = {}
    result = []
    for draft in drafts:
        key = draft.chain_key
        counts[key] = counts.get(key, 0) + 1
        result.append(draft.model_copy(update={"aggregate_version": counts[key]}))
    return result


def _acme_index(drafts: list[EventDraft], position: int) -> int:
    """The index in `drafts` of acme's event at a 1-based log position."""
    return [i for i, d in enumerate(drafts) if d.tenant == TENANT][position - 1]


Tampering = Callable[[list[EventDraft]], list[EventDraft]]


def _delete(position: int) -> Tampering:
    return lambda drafts: [d for i, d in enumerate(drafts) if i != _acme_index(drafts, position)]


def _truncate(count: int) -> Tampering:
    def tamper(drafts: list[EventDraft]) -> list[EventDraft]:
        cut = {_acme_index(drafts, len(LAYOUT) - k) for k in range(count)}
        return [d for i, d in enumerate(drafts) if i not in cut]

    return tamper


def _delete_mission(mission: str) -> Tampering:
    return lambda drafts: [d for d in drafts if (d.tenant, d.mission_id) != (TENANT, mission)]


def _alter(position: int) -> Tampering:
    def tamper(drafts: list[EventDraft]) -> list[EventDraft]:
        index = _acme_index(drafts, position)
        changed = list(drafts)
        changed[index] = drafts[index].model_copy(update={"payload": {"output": "forged"}})
        return changed

    return tamper


def _swap(position: int) -> Tampering:
    """Swap acme's events at `position` and `position + 1` (of different missions)."""

    def tamper(drafts: list[EventDraft]) -> list[EventDraft]:
        first, second = _acme_index(drafts, position), _acme_index(drafts, position + 1)
        changed = list(drafts)
        changed[first], changed[second] = drafts[second], drafts[first]
        return changed

    return tamper


def _insert(position: int) -> Tampering:
    """Insert a forged event of mission m1 so that it takes acme's `position`."""

    def tamper(drafts: list[EventDraft]) -> list[EventDraft]:
        index = _acme_index(drafts, position)
        forged = make_draft(1, "m1", TENANT, payload={"output": "forged"})
        return [*drafts[:index], forged, *drafts[index:]]

    return tamper


CASES: list[tuple[str, Tampering, str]] = [
    ("delete one event", _delete(5), "first position that differs: 5 "),
    ("truncate the tail by 1", _truncate(1), "positions 12..12 were deleted"),
    ("truncate the tail by 3", _truncate(3), "positions 10..12 were deleted"),
    ("delete a whole mission", _delete_mission("m2"), "first position that differs: 2 "),
    ("alter an output, re-seal the hashes", _alter(7), "first position that differs: 7 "),
    ("swap two events", _swap(3), "first position that differs: 3 "),
    ("insert a forged event, re-seal the hashes", _insert(4), "first position that differs: 4 "),
]


def _saved(store: RecorderEventStore, name: str) -> list[Checkpoint]:
    return kept_checkpoints(store, name, TENANT, KEY.public_key())


@pytest.mark.parametrize(("case", "tamper", "located"), CASES, ids=[c[0] for c in CASES])
def test_a_rewritten_store_fails_against_a_saved_checkpoint_and_is_located(
    store: RecorderEventStore,
    store_settings: EventStoreSettings,
    case: str,
    tamper: Tampering,
    located: str,
) -> None:
    name = store_settings.name
    drafts = _record(store, name)
    honest = prove_log(read_tenant_log(store, name, TENANT), _saved(store, name))
    kept = _saved(store, name)
    store.close()

    _rewrite(store_settings, _reseq(tamper(drafts)))
    reopened = open_event_store(store_settings)
    try:
        log = read_tenant_log(reopened, name, TENANT)
        chains = verify_history([e for e in stored_events(reopened) if e.tenant == TENANT])
        with_kept = prove_log(log, _saved(reopened, name))
        with_saved_only = prove_log(log, kept[-1:])
    finally:
        reopened.close()

    assert honest.problems == [] and honest.proven == len(LAYOUT)
    assert not [f for f in chains if "chain" in f.problem], "the attacker re-sealed every chain"
    assert len(with_kept.problems) == 1, case
    assert located in with_kept.problems[0], with_kept.problems[0]
    assert len(with_saved_only.problems) == 1, case


def test_a_checkpointer_refuses_to_sign_a_log_rewritten_behind_its_back(
    store: RecorderEventStore, store_settings: EventStoreSettings
) -> None:
    name = store_settings.name
    drafts = _record(store, name)
    signed_before = len(store.checkpoint_notes(TENANT))
    store.close()
    _rewrite(store_settings, _reseq(_alter(3)(drafts)))
    reopened = open_event_store(store_settings)
    try:
        checkpointer = Checkpointer(reopened, name, KEY, CheckpointSettings(every_events=1))
        reopened.append([make_draft(99, "m9", TENANT)])
        signed = checkpointer.advance()
        notes = reopened.checkpoint_notes(TENANT)
    finally:
        reopened.close()

    assert signed == []
    assert len(notes) == signed_before
    assert "no longer extends its checkpoint of size 12" in checkpointer.refused[TENANT]


def test_checkpoints_survive_a_restart_and_continue_the_same_log(
    store: RecorderEventStore, store_settings: EventStoreSettings
) -> None:
    name = store_settings.name
    _record(store, name)
    store.close()
    reopened = open_event_store(store_settings)
    try:
        reopened.append([make_draft(99, "m9", TENANT)])
        signed = Checkpointer(reopened, name, KEY, CheckpointSettings(every_events=1)).advance()
        log = read_tenant_log(reopened, name, TENANT)
        proof = prove_log(log, _saved(reopened, name))
    finally:
        reopened.close()

    assert [(c.tenant, c.size) for c in signed] == [(TENANT, len(LAYOUT) + 1)]
    assert proof.problems == [] and proof.proven == len(LAYOUT) + 1


def test_a_checkpoint_signed_with_another_key_is_refused(
    store: RecorderEventStore, store_settings: EventStoreSettings, tmp_path: Path
) -> None:
    name = store_settings.name
    impostor = Ed25519PrivateKey.generate()
    store.append([make_draft(1, "m1", TENANT)])
    Checkpointer(store, name, impostor, CheckpointSettings(every_events=1)).advance()
    [note] = store.checkpoint_notes(TENANT)
    saved = tmp_path / "acme.checkpoint.json"
    saved.write_text(checkpoint_document(TENANT, [parse_checkpoint(note)]))

    with pytest.raises(LogFileError, match="signed by another key"):
        read_checkpoint_file(saved, TENANT, KEY.public_key())
    assert _saved(store, name) == []
