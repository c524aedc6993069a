"""The event envelope, its hash chain, chain verification, subjects and upcasting."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from rustchain.domain.events import names as event_names
from rustchain.domain.events.chain import verify_chain
from rustchain.domain.events.envelope import (
    GENESIS_HASH,
    EventChainError,
    EventDraft,
    EventEnvelope,
    decode_event,
    seal,
    seal_all,
)
from rustchain.domain.events.names import EventNameError
from rustchain.domain.events.upcast import UpcastError, Upcasters, fold

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def draft(n: int, mission: str = "m1", tenant: str = "acme", **changes: Any) -> EventDraft:
    fields: dict[str, Any] = {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "tenant": tenant,
        "mission_id": mission,
        "service": "executor",
        "aggregate_id": mission,
        "aggregate_version": n,
        "type": "StepSucceeded",
        "occurred_at": T0 + timedelta(seconds=n),
        "payload": {"step": f"s{n}", "output": "ünïcode"},
        "traceparent": TRACEPARENT,
    }
    fields.update(changes)
    return EventDraft(**fields)


def chain(count: int, mission: str = "m1") -> list[EventEnvelope]:
    return seal_all([draft(n, mission) for n in range(1, count + 1)], {})


def test_first_event_links_to_genesis_and_later_ones_to_their_predecessor() -> None:
    events = chain(3)

    assert [e.sequence for e in events] == [1, 2, 3]
    assert events[0].previous_hash == GENESIS_HASH
    assert events[1].previous_hash == events[0].hash
    assert events[2].previous_hash == events[1].hash
    assert len({e.hash for e in events}) == 3


def test_hash_covers_every_field_but_itself() -> None:
    event = chain(1)[0]
    for field, value in [
        ("payload", {"step": "other"}),
        ("traceparent", None),
        ("aggregate_version", 9),
        ("occurred_at", T0),
        ("service", "planner"),
    ]:
        assert event.model_copy(update={field: value}).computed_hash() != event.hash, field


def test_event_survives_json_round_trip_with_the_same_hash() -> None:
    event = chain(2)[1]

    decoded = decode_event(json.loads(event.to_json()))

    assert decoded == event
    assert decoded.computed_hash() == event.hash


def test_time_is_normalised_to_utc_so_the_hash_does_not_depend_on_the_zone() -> None:
    local = T0.astimezone(timezone(timedelta(hours=2)))

    assert seal(draft(1, occurred_at=local), None).hash == seal(draft(1, occurred_at=T0), None).hash


def test_naive_time_and_bad_traceparent_are_refused() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        draft(1, occurred_at=datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="traceparent"):
        draft(1, traceparent="00-" + "0" * 32 + "-00f067aa0ba902b7-01")


def test_event_cannot_follow_an_event_of_another_mission() -> None:
    first = seal(draft(1, "m1"), None)

    with pytest.raises(EventChainError, match="one mission"):
        seal(draft(2, "m2"), first)


def test_whole_chains_of_interleaved_missions_verify() -> None:
    heads: dict[tuple[str, str], EventEnvelope] = {}
    drafts = [draft(n, "m1" if n % 2 else "m2") for n in range(1, 11)]

    assert verify_chain(seal_all(drafts, heads)) is None


def test_altered_event_is_named() -> None:
    events = chain(5)
    events[2] = events[2].model_copy(update={"payload": {"step": "forged"}})

    broken = verify_chain(events)

    assert broken is not None
    assert broken.event_id == events[2].id
    assert broken.position == 3
    assert "altered" in broken.reason


def test_altered_event_with_recomputed_hash_breaks_the_next_link() -> None:
    events = chain(5)
    forged = events[2].model_copy(update={"payload": {"step": "forged"}})
    events[2] = forged.model_copy(update={"hash": forged.computed_hash()})

    broken = verify_chain(events)

    assert broken is not None
    assert broken.event_id == events[3].id
    assert "previous_hash" in broken.reason


def test_removed_event_is_detected_at_the_event_after_it() -> None:
    events = chain(5)
    del events[1]

    broken = verify_chain(events)

    assert broken is not None
    assert broken.event_id == events[1].id
    assert "missing" in broken.reason
    assert events[0].id in broken.describe()


def test_reordered_events_are_detected_at_the_first_out_of_place() -> None:
    events = chain(5)
    events[1], events[2] = events[2], events[1]

    broken = verify_chain(events)

    assert broken is not None
    assert broken.event_id == events[1].id
    assert broken.position == 2


def test_repeated_event_is_detected() -> None:
    events = chain(3)
    events.insert(2, events[1])

    broken = verify_chain(events)

    assert broken is not None
    assert "repeated or reordered" in broken.reason


def test_subject_and_stream_names() -> None:
    event = seal(draft(1), None)

    assert event.subject == "rustchain.acme.m1.executor.StepSucceeded"
    assert event_names.stream_name("acme-eu_1") == "RUSTCHAIN_ACME-EU_1"
    assert event_names.event_subject("acme", "_", "planner", "PlanMade") == (
        "rustchain.acme._.planner.PlanMade"
    )
    assert event_names.tenant_subjects("acme") == "rustchain.acme.>"
    assert event_names.mission_subjects("acme", "m1") == "rustchain.acme.m1.>"
    assert event_names.service_subjects("acme", "m1", "executor") == (
        "rustchain.acme.m1.executor.*"
    )


@pytest.mark.parametrize(
    ("tenant", "mission"),
    [
        ("ac.me", "m1"),
        ("acme", "m.1"),
        ("a*", "m1"),
        ("acme", ">"),
        ("ac me", "m1"),
        ("Acme", "m1"),
        ("", "m1"),
        ("acme", ""),
        ("acme", "_m"),
        ("x" * 64, "m1"),
    ],
)
def test_names_that_would_break_a_subject_are_refused(tenant: str, mission: str) -> None:
    with pytest.raises(EventNameError, match="invalid"):
        event_names.event_subject(tenant, mission, "executor", "StepSucceeded")
    with pytest.raises(ValidationError):
        draft(1, mission=mission, tenant=tenant)


def test_distinct_tenants_never_share_a_stream_or_subject() -> None:
    tenants = ["acme", "acme-1", "acme_1", "acme1", "a"]
    streams = {event_names.stream_name(t) for t in tenants}
    subjects = {event_names.tenant_subjects(t) for t in tenants}

    assert len(streams) == len(subjects) == len(tenants)


def test_old_event_versions_are_upcast_on_read_and_never_rewritten() -> None:
    upcasters = Upcasters()
    upcasters.register("StepSucceeded", 1, lambda p: {**p, "attempt": 1})
    upcasters.register("StepSucceeded", 2, lambda p: {**p, "output": {"text": p["output"]}})
    stored = seal(draft(1), None)

    current = upcasters.upcast(stored)

    assert current.version == 3
    assert current.payload == {"step": "s1", "attempt": 1, "output": {"text": "ünïcode"}}
    assert stored.version == 1
    assert verify_chain([stored]) is None


def test_event_newer_than_the_code_or_without_a_path_is_refused() -> None:
    upcasters = Upcasters()
    upcasters.register("StepSucceeded", 2, lambda p: p)

    with pytest.raises(UpcastError, match="no upcaster"):
        upcasters.upcast(seal(draft(1), None))
    with pytest.raises(UpcastError, match="newer"):
        upcasters.upcast(seal(draft(1, version=4), None))


def test_fold_rebuilds_state_from_upcast_events() -> None:
    upcasters = Upcasters()
    upcasters.register("StepSucceeded", 1, lambda p: {**p, "step": p["step"].upper()})

    def apply(done: list[str], event: EventEnvelope) -> list[str]:
        return [*done, event.payload["step"]]

    assert fold(chain(3), [], apply, upcasters) == ["S1", "S2", "S3"]
