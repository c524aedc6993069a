"""Property tests: any single alteration, removal or reordering of a history is caught."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rustchain.domain.events.chain import verify_chain
from rustchain.domain.events.envelope import EventEnvelope, seal_all
from tests.unit.test_events import draft


def _history(missions: list[str]) -> list[EventEnvelope]:
    return seal_all([draft(n, m) for n, m in enumerate(missions, start=1)], {})


histories = st.lists(st.sampled_from(["m1", "m2", "m3"]), min_size=2, max_size=30).map(_history)


def _later_of_same_mission(events: list[EventEnvelope], index: int) -> bool:
    return any(e.chain_key == events[index].chain_key for e in events[index + 1 :])


@given(histories)
def test_untouched_histories_verify(events: list[EventEnvelope]) -> None:
    assert verify_chain(events) is None


@given(histories, st.data())
def test_an_altered_event_is_named(events: list[EventEnvelope], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(events) - 1))
    events[index] = events[index].model_copy(update={"payload": {"forged": True}})

    broken = verify_chain(events)

    assert broken is not None
    assert broken.event_id == events[index].id


@given(histories, st.data())
def test_a_removed_event_is_caught_unless_it_was_its_missions_last(
    events: list[EventEnvelope], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(events) - 1))
    detectable = _later_of_same_mission(events, index)
    removed = events.pop(index)

    broken = verify_chain(events)

    if detectable:
        assert broken is not None
        assert broken.mission_id == removed.mission_id
        assert broken.event_id == next(
            e.id for e in events[index:] if e.chain_key == removed.chain_key
        )
    else:
        assert broken is None


@given(histories, st.data())
def test_swapping_two_events_of_one_mission_is_caught(
    events: list[EventEnvelope], data: st.DataObject
) -> None:
    first = data.draw(st.integers(0, len(events) - 1))
    same = [
        i for i in range(first + 1, len(events)) if events[i].chain_key == events[first].chain_key
    ]
    if not same:
        return
    second = data.draw(st.sampled_from(same))
    events[first], events[second] = events[second], events[first]

    broken = verify_chain(events)

    assert broken is not None
    assert broken.event_id == events[first].id
