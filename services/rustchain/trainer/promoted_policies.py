"""The tenants' promoted llm-step policies as an executor asks for them, kept current cheaply.

An executor asks for the policy of every llm step it starts. Reading and folding the tenant's
whole `_` chain each time costs a query per step that grows with the trainer's history; instead
the policy events are kept per tenant, and each question first reads only what the trainer's
store committed after the last log position seen (as `MissionIndex` is kept by the executor).
A promotion or a rollback committed by another process is therefore seen at the next step.
"""

from __future__ import annotations

import threading
from typing import Any

from rustchain.domain.events.names import NO_MISSION
from rustchain.domain.runs.tuned_policy import (
    POLICY_EVENT_TYPES,
    MissionPolicies,
    StepSettings,
    fold_policies,
)
from rustchain.platform.storage.event_store import EventStore, events_after
from rustchain.trainer.trainer_events import SERVICE

# (type, payload, time) as `fold_policies` reads them.
_Fact = tuple[str, dict[str, Any], str]


class PromotedPolicies:
    """Each tenant's policy events from the trainer's store, refreshed from the log's tail."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._position = 0
        self._facts: dict[str, list[_Fact]] = {}
        # Folded policies per (tenant, mission), dropped when the tenant's facts change.
        self._folded: dict[tuple[str, str], MissionPolicies] = {}
        # Executors ask from worker threads too; one refresh at a time keeps the position exact.
        self._lock = threading.Lock()

    @property
    def position(self) -> int:
        """The last log position read."""
        return self._position

    def refresh(self) -> None:
        """Read the policy events committed since the last position seen."""
        for position, event in events_after(self.store, self._position):
            self._position = position
            if (
                event.mission_id != NO_MISSION
                or event.service != SERVICE
                or event.type not in POLICY_EVENT_TYPES
            ):
                continue
            fact = (event.type, dict(event.payload), event.occurred_at.isoformat())
            self._facts.setdefault(event.tenant, []).append(fact)
            mission = str(event.payload.get("mission", ""))
            self._folded.pop((event.tenant, mission), None)

    def policies(self, tenant: str, mission: str) -> MissionPolicies:
        """Every version of the tenant's policy for the mission, as of the store's last commit."""
        with self._lock:
            self.refresh()
            key = (tenant, mission)
            found = self._folded.get(key)
            if found is None:
                found = fold_policies(mission, self._facts.get(tenant, []))
                self._folded[key] = found
            return found

    def step_policy(
        self, tenant: str, _mission_id: str, mission: str, step_id: str
    ) -> tuple[int, StepSettings] | None:
        """The promoted settings of one llm step (the executor's `StepPolicySource`)."""
        found = self.policies(tenant, mission).promoted()
        if found is None or step_id not in found.steps:
            return None
        return found.version, found.steps[step_id]
