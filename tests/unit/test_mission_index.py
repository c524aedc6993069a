"""The projection of a store's missions, folded event by event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from rustchain.domain.events import EventDraft, EventEnvelope, seal
from rustchain.domain.mission_index import RUNNING, MissionIndex

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _event(tenant: str, mission: str, version: int, kind: str, **payload: Any) -> EventEnvelope:
    draft = EventDraft(
        id=str(uuid.uuid4()),
        tenant=tenant,
        mission_id=mission,
        service="executor",
        aggregate_id=mission,
        aggregate_version=version,
        type=kind,
        occurred_at=T0,
        payload=payload,
    )
    return seal(draft, None)


def _started(tenant: str, mission: str, name: str) -> EventEnvelope:
    plan = {"mission_name": name}
    return _event(tenant, mission, 1, "MissionStarted", plan=plan, plan_hash="h-" + mission)


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


def test_an_end_without_a_start_changes_nothing() -> None:
    index = MissionIndex()
    index.apply(_event("acme", "m9", 5, "MissionFinished", outcome="succeeded"))
    assert index.of_tenant("acme") == [] and index.unfinished() == []
