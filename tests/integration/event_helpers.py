"""Test events for the integration tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from rustchain.domain.events import EventDraft

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def make_draft(n: int, mission: str = "m1", tenant: str = "acme", **changes: Any) -> EventDraft:
    """The n-th test event of a mission."""
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "tenant": tenant,
        "mission_id": mission,
        "service": "executor",
        "aggregate_id": mission,
        "aggregate_version": n,
        "type": "StepSucceeded",
        "occurred_at": T0 + timedelta(milliseconds=n),
        "payload": {"n": n, "mission": mission},
    }
    fields.update(changes)
    return EventDraft(**fields)
