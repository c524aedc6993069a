"""Keep a verdict as an event, so an auditor can show which policy a mission was proven against."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rustchain.domain.events import EventDraft, EventEnvelope
from rustchain.domain.verdict import Verdict
from rustchain.platform.event_store import EventStore

SERVICE = "verifier"
PLAN_VERIFIED = "PlanVerified"


def verdict_draft(
    verdict: Verdict, tenant: str, mission_id: str, version: int, event_id: str, now: datetime
) -> EventDraft:
    """The `PlanVerified` event of a verdict: the verdict whole, with plan and policy hashes."""
    return EventDraft(
        id=event_id,
        tenant=tenant,
        mission_id=mission_id,
        service=SERVICE,
        aggregate_id=f"{mission_id}:verification",
        aggregate_version=version,
        type=PLAN_VERIFIED,
        occurred_at=now,
        payload=verdict.model_dump(mode="json"),
    )


def record_verdict(
    store: EventStore,
    verdict: Verdict,
    tenant: str,
    mission_id: str,
    new_id: Callable[[], str],
    clock: Callable[[], datetime],
) -> EventEnvelope:
    """Append the verdict to the mission's chain in the verifier's store; return the event."""
    earlier = [
        e
        for e in store.mission_events(tenant, mission_id)
        if e.service == SERVICE and e.type == PLAN_VERIFIED
    ]
    draft = verdict_draft(verdict, tenant, mission_id, len(earlier) + 1, new_id(), clock())
    (event,) = store.append([draft])
    return event
