"""The projection of a store's missions, folded event by event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from rustchain.domain.events.envelope import EventDraft, EventEnvelope, seal
from rustchain.domain.runs.mission_index import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    RUNNING,
    MissionEntry,
    MissionIndex,
    PageTokenError,
    page_of,
)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _event(
    tenant: str, mission: str, version: int, kind: str, schema: int = 1, **payload: Any
) -> EventEnvelope:
    draft = EventDraft(
        id=str(uuid.uuid4()),
        tenant=tenant,
        mission_id=mission,
        service="executor",
        aggregate_id=mission,
        aggregate_version=version,
        type=kind,
        version=schema,
        occurred_at=T0,
        payload=payload,
    )
    return seal(draft, None)


def _started(tenant: str, mission: str, name: str) -> EventEnvelope:
    plan = {"mission_name": name}
    return _event(
        tenant,
        mission,
        1,
        "MissionStarted",
        plan=plan,
        plan_hash="h-" + mission,
        variables={},
        workspace="/w/" + mission,
    )


def test_missions_are_listed_per_tenant_in_start_order_with_their_outcome() -> None:
    index = MissionIndex()
    for event in (
        _started("acme", "m2", "second"),
        _started("globex", "g1", "theirs"),
        _started("acme", "m1", "first"),
        _event("acme", "m2", 2, "StepStarted", step_id="a", attempt=1),
        _event("acme", "m2", 3, "MissionFinished", outcome="failed"),
    ):
        index.apply(event)

    acme = index.of_tenant("acme")
    assert [(e.mission_id, e.mission_name, e.status) for e in acme] == [
        ("m2", "second", "failed"),
        ("m1", "first", RUNNING),
    ]
    assert acme[0].plan_hash == "h-m2"
    assert [e.mission_id for e in index.of_tenant("globex")] == ["g1"]
    assert index.of_tenant("initech") == []
    assert index.unfinished() == [("globex", "g1"), ("acme", "m1")]
    assert index.has("acme", "m1") and not index.has("globex", "m1")


def test_an_end_without_a_start_changes_nothing() -> None:
    index = MissionIndex()
    index.apply(_event("acme", "m9", 5, "MissionFinished", outcome="succeeded"))
    assert index.of_tenant("acme") == [] and index.unfinished() == []


def _entries(count: int) -> list[MissionEntry]:
    return [MissionEntry("acme", f"m{n}", "x", "h", "/ws") for n in range(count)]


def test_pages_walk_the_listing_in_order_and_end_with_an_empty_token() -> None:
    entries = _entries(5)
    first = page_of(entries, 2, "")
    second = page_of(entries, 2, first.next_token)
    last = page_of(entries, 2, second.next_token)

    walked = [e.mission_id for page in (first, second, last) for e in page.entries]
    assert walked == ["m0", "m1", "m2", "m3", "m4"]
    assert last.next_token == ""
    assert page_of(entries, 5, "").next_token == ""


def test_a_token_stays_valid_as_missions_start() -> None:
    entries = _entries(3)
    first = page_of(entries, 2, "")
    entries += _entries(6)[3:]
    assert [e.mission_id for e in page_of(entries, 2, first.next_token).entries] == ["m2", "m3"]


def test_page_sizes_default_and_are_capped() -> None:
    entries = _entries(MAX_PAGE_SIZE + 5)
    assert len(page_of(entries, 0, "").entries) == DEFAULT_PAGE_SIZE
    assert len(page_of(entries, 2**31 - 1, "").entries) == MAX_PAGE_SIZE


@pytest.mark.parametrize("token", ["abc", "-1", "99", "1" * 40, "1.5"])
def test_a_token_it_did_not_give_is_refused(token: str) -> None:
    with pytest.raises(PageTokenError, match="is not one this service gave"):
        page_of(_entries(5), 2, token)
