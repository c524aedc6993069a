"""Comparing the stores' chains with JetStream's copy: the first disagreement of each is named."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from rustchain.domain.events.envelope import EventDraft, EventEnvelope, seal_all
from rustchain.domain.runs.stream_agreement import compare_with_stream

AUDITED = ("executor", "verifier")
AT = datetime(2026, 1, 1, tzinfo=UTC)


def _chain(mission: str, service: str, count: int) -> list[EventEnvelope]:
    drafts = [
        EventDraft(
            id=str(uuid.uuid4()),
            tenant="acme",
            mission_id=mission,
            service=service,
            aggregate_id=mission,
            aggregate_version=n,
            type="StepSucceeded",
            occurred_at=AT,
            payload={"n": n},
        )
        for n in range(1, count + 1)
    ]
    return seal_all(drafts, {})


def _history() -> list[EventEnvelope]:
    return [
        *_chain("m1", "verifier", 2),
        *_chain("m1", "executor", 5),
        *_chain("m2", "executor", 3),
    ]


def _problems(stored: list[EventEnvelope], streamed: list[EventEnvelope]) -> list[str]:
    return [f.describe() for f in compare_with_stream(stored, streamed, AUDITED).findings]


def test_the_same_events_in_the_same_order_agree_whatever_the_interleaving() -> None:
    stored = _history()
    # The stream interleaves chains (relays of two stores): only the order within a chain counts.
    streamed = [stored[2], stored[0], stored[7], stored[3], stored[1], *stored[4:7], *stored[8:]]

    comparison = compare_with_stream(stored, streamed, AUDITED)

    assert comparison.findings == []
    assert (comparison.chains, comparison.stored, comparison.streamed) == (3, 10, 10)


def test_an_event_removed_from_the_stream_is_named_with_its_chain_and_position() -> None:
    stored = _history()
    removed = stored[4]

    assert _problems(stored, [e for e in stored if e is not removed]) == [
        f"acme/m1: executor chain, position 3: event {removed.id} (StepSucceeded) is in the store"
        " but missing from JetStream"
    ]


def test_the_unrelayed_end_of_a_chain_is_named_from_its_first_event() -> None:
    stored = _history()

    [problem] = _problems(stored, stored[:-2])

    assert problem == (
        f"acme/m2: executor chain, position 2: event {stored[-2].id} (StepSucceeded) is in the"
        " store but missing from JetStream (and the 1 event(s) after it): not relayed yet, or"
        " removed from the stream"
    )


def test_an_event_only_jetstream_holds_is_named() -> None:
    stored = _history()
    stranger = _chain("m1", "executor", 6)[5]
    elsewhere = _chain("m3", "verifier", 1)

    problems = _problems(stored, [*stored[:4], stranger, *stored[4:], *elsewhere])

    assert problems == [
        f"acme/m1: executor chain, position 3: event {stranger.id} (StepSucceeded) is in"
        " JetStream but not in the store",
        f"acme/m3: verifier chain, position 1: event {elsewhere[0].id} (StepSucceeded) is in"
        " JetStream but not in the store",
    ]


def test_an_event_whose_content_differs_in_the_stream_is_named_with_both_hashes() -> None:
    stored = _history()
    altered = stored[3].model_copy(update={"payload": {"n": 99}})
    streamed = [altered if e is stored[3] else e for e in stored]

    [problem] = _problems(stored, streamed)

    assert problem.startswith(
        f"acme/m1: executor chain, position 2: event {stored[3].id} (StepSucceeded) differs:"
    )
    assert f"content hash {stored[3].hash[:12]} in the store" in problem
    assert f"{altered.computed_hash()[:12]} in JetStream" in problem


def test_copies_and_reordering_in_the_stream_are_named() -> None:
    stored = _history()
    copied = [*stored, stored[9]]
    swapped = [*stored[:3], stored[4], stored[3], *stored[5:]]

    assert _problems(stored, copied) == [
        f"acme/m2: executor chain, position 4: event {stored[9].id} (StepSucceeded) is in"
        " JetStream more than once"
    ]
    assert _problems(stored, swapped) == [
        f"acme/m1: executor chain, position 2: out of order: the store has event {stored[3].id}"
        f" (StepSucceeded) here, JetStream has event {stored[4].id} (StepSucceeded)"
    ]


def test_events_of_services_whose_stores_are_not_audited_are_left_out() -> None:
    stored = _history()
    trainer = _chain("m1", "trainer", 2)

    comparison = compare_with_stream(stored, [*stored, *trainer], AUDITED)

    assert comparison.findings == []
    assert comparison.streamed == 10
