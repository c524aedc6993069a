"""Which missions a store holds, per tenant, and how each ended: a projection of the run facts.

Folded event by event, so that a reader keeps it current by applying only what was committed since
it last looked, instead of reading the whole log for every listing.
"""

from __future__ import annotations

from dataclasses import dataclass

from rustchain.domain.events import EventEnvelope

RUNNING = "running"


@dataclass
class MissionEntry:
    """One mission as a listing shows it."""

    tenant: str
    mission_id: str
    mission_name: str
    plan_hash: str
    workspace: str
    status: str = RUNNING


class MissionIndex:
    """Every started mission by tenant, in start order, with its outcome once it finished."""

    def __init__(self) -> None:
        self._by_tenant: dict[str, dict[str, MissionEntry]] = {}
        self._unfinished: dict[tuple[str, str], None] = {}

    def apply(self, event: EventEnvelope) -> None:
        """Take one stored event into account; only starts and ends of missions change it."""
        key = (event.tenant, event.mission_id)
        if event.type == "MissionStarted":
            plan = event.payload.get("plan") or {}
            entry = MissionEntry(
                tenant=event.tenant,
                mission_id=event.mission_id,
                mission_name=str(plan.get("mission_name", "")),
                plan_hash=str(event.payload.get("plan_hash", "")),
                workspace=str(event.payload.get("workspace", "")),
            )
            self._by_tenant.setdefault(event.tenant, {})[event.mission_id] = entry
            self._unfinished[key] = None
        elif event.type == "MissionFinished":
            found = self._by_tenant.get(event.tenant, {}).get(event.mission_id)
            if found is not None:
                found.status = str(event.payload.get("outcome", ""))
            self._unfinished.pop(key, None)

    def of_tenant(self, tenant: str) -> list[MissionEntry]:
        """A tenant's missions, oldest first."""
        return list(self._by_tenant.get(tenant, {}).values())

    def unfinished(self) -> list[tuple[str, str]]:
        """(tenant, mission id) of every mission started and not finished, oldest first."""
        return list(self._unfinished)
