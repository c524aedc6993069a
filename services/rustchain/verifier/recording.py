"""Keep a verdict as an event, so an auditor can show which policy a mission was proven against."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rustchain.domain.events.envelope import EventDraft, EventEnvelope
from rustchain.domain.events.verification_events import (
    PLAN_VERIFIED,
    VERIFICATION_FACTS,
    VERIFIER,
    PlanVerified,
)
from rustchain.domain.plans.verdict import Verdict
from rustchain.platform.storage.event_store import EventStore, mission_facts

SERVICE = VERIFIER
__all__ = ["PLAN_VERIFIED", "SERVICE", "record_verdict", "verdict_draft"]


def verdict_draft(
    verdict: Verdict, tenant: str, mission_id: str, version: int, event_id: str, now: datetime
) -> EventDraft:
    """The `PlanVerified` event of a verdict: the verdict whole, with plan and policy hashes."""
    fact = PlanVerified.of(verdict)
    return EventDraft(
        id=event_id,
        tenant=tenant,
        mission_id=mission_id,
        service=SERVICE,
        aggregate_id=f"{mission_id}:verification",
        aggregate_version=version,
        type=fact.type,
        version=VERIFICATION_FACTS.version_of(fact),
        occurred_at=now,
        payload=VERIFICATION_FACTS.payload(fact),
    )


def record_verdict(
    store: EventStore,
    verdict: Verdict,
    tenant: str,
    mission_id: str,
    new_id: Callable[[], str],
    clock: Callable[[], datetime],
) -> EventEnvelope:
    """Append the verdict to the mission's chain in the verifier's store; return the event.

    The mission's earlier verdicts are read as facts: CorruptHistoryError if one cannot be."""
    earlier = [
        r
        for r in mission_facts(store, tenant, mission_id, VERIFICATION_FACTS)
        if r.service == SERVICE
    ]
    draft = verdict_draft(verdict, tenant, mission_id, len(earlier) + 1, new_id(), clock())
    (event,) = store.append([draft])
    return event
