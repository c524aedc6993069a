"""The executor's view of the promoted policies: kept per tenant, refreshed from the log's tail,
and still current when another process promotes or rolls back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rustchain.domain.runs.tuned_policy import StepSettings
from rustchain.platform.storage.event_store import (
    EventStore,
    EventStoreSettings,
    Notification,
    open_event_store,
)
from rustchain.trainer.promoted_policies import PromotedPolicies
from rustchain.trainer.trainer_events import TrainerEvents

MISSION = "ticket-triage"


class CountingStore:
    """The store, noting the log position each notification read starts after."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.reads: list[int] = []

    def notifications(self, after: int, limit: int) -> list[Notification]:
        self.reads.append(after)
        return self.store.notifications(after, limit)


@pytest.fixture
def trainer(tmp_path: Path) -> Iterator[TrainerEvents]:
    """The trainer's writer, on a store of its own (as the trainer's process holds it)."""
    events = TrainerEvents(open_event_store(EventStoreSettings("trainer", tmp_path)))
    yield events
    events.store.close()


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[tuple[PromotedPolicies, CountingStore]]:
    """The executor's reader, on another connection to the same store."""
    store = open_event_store(EventStoreSettings("trainer", tmp_path))
    counting = CountingStore(store)
    yield PromotedPolicies(counting), counting  # type: ignore[arg-type]
    store.close()


def promote(events: TrainerEvents, tenant: str, model: str) -> int:
    version = events.proposed(tenant, MISSION, {"classify": StepSettings(model=model)}, "test")
    events.promoted(tenant, MISSION, version)
    return version


def test_a_newly_promoted_policy_is_picked_up_at_the_next_step(
    trainer: TrainerEvents, reader: tuple[PromotedPolicies, CountingStore]
) -> None:
    policies, _ = reader
    assert policies.step_policy("acme", "m1", MISSION, "classify") is None

    first = promote(trainer, "acme", "good-model")
    assert policies.step_policy("acme", "m2", MISSION, "classify") == (
        first,
        StepSettings(model="good-model"),
    )

    second = promote(trainer, "acme", "better-model")
    assert policies.step_policy("acme", "m3", MISSION, "classify") == (
        second,
        StepSettings(model="better-model"),
    )

    trainer.rolled_back("acme", MISSION)
    assert policies.step_policy("acme", "m4", MISSION, "classify") == (
        first,
        StepSettings(model="good-model"),
    )
    assert policies.step_policy("globex", "m5", MISSION, "classify") is None
    assert policies.step_policy("acme", "m6", MISSION, "other-step") is None


def test_each_refresh_reads_only_what_was_committed_since_the_last(
    trainer: TrainerEvents, reader: tuple[PromotedPolicies, CountingStore]
) -> None:
    policies, counting = reader
    promote(trainer, "acme", "good-model")
    promote(trainer, "globex", "good-model")
    policies.step_policy("acme", "m1", MISSION, "classify")
    seen = policies.position
    assert seen == trainer.store.last_position() > 0

    counting.reads.clear()
    for _ in range(5):
        policies.step_policy("acme", "m2", MISSION, "classify")

    # Nothing new: every question reads from the last position, never from the start again.
    assert counting.reads == [seen] * 5

    version = promote(trainer, "acme", "better-model")
    counting.reads.clear()
    found = policies.step_policy("acme", "m3", MISSION, "classify")

    assert found is not None and found[0] == version
    assert counting.reads[0] == seen and 0 not in counting.reads
    assert policies.position == trainer.store.last_position()
