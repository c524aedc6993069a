"""Which missions a store holds, per tenant, and how each ended: a projection of the run facts.

It reads each event through `RUN_FACTS` (upcast and typed), never a stored payload by hand.

Folded event by event, so that a reader keeps it current by applying only what was committed since
it last looked, instead of reading the whole log for every listing.
"""

from __future__ import annotations

from dataclasses import dataclass

from rustchain.domain.errors import CorruptHistoryError
from rustchain.domain.events.envelope import EventEnvelope
from rustchain.domain.events.fact_family import Recorded
from rustchain.domain.runs.run_events import RUN_FACTS, MissionFinished, MissionStarted, RunEvent

RUNNING = "running"
UNREADABLE = "unreadable"
"""The status of a mission with a recorded fact this code cannot read (see CorruptHistoryError)."""
DEFAULT_PAGE_SIZE = 1_000
MAX_PAGE_SIZE = 10_000


class PageTokenError(ValueError):
    """A page token this index did not give out."""


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
        self._broken: dict[tuple[str, str], str] = {}

    def apply(self, event: EventEnvelope) -> None:
        """Take one stored event into account, read as its current fact. A run fact that cannot
        be read marks its mission UNREADABLE (it cannot be resumed) instead of stopping the
        listing of every other mission."""
        if event.type not in RUN_FACTS:
            return
        try:
            recorded = RUN_FACTS.read(event)
        except CorruptHistoryError as error:
            self._unreadable(event, str(error))
            return
        self.apply_fact(recorded)

    def apply_fact(self, recorded: Recorded[RunEvent]) -> None:
        """Take one run fact into account; only starts and ends of missions change it."""
        key = (recorded.tenant, recorded.mission_id)
        fact = recorded.fact
        if key in self._broken:
            return
        if isinstance(fact, MissionStarted):
            entry = MissionEntry(
                tenant=recorded.tenant,
                mission_id=recorded.mission_id,
                mission_name=str(fact.plan.get("mission_name", "")),
                plan_hash=fact.plan_hash,
                workspace=fact.workspace,
            )
            self._by_tenant.setdefault(recorded.tenant, {})[recorded.mission_id] = entry
            self._unfinished[key] = None
        elif isinstance(fact, MissionFinished):
            found = self._by_tenant.get(recorded.tenant, {}).get(recorded.mission_id)
            if found is not None:
                found.status = fact.outcome
            self._unfinished.pop(key, None)

    def _unreadable(self, event: EventEnvelope, reason: str) -> None:
        key = (event.tenant, event.mission_id)
        missions = self._by_tenant.setdefault(event.tenant, {})
        entry = missions.get(event.mission_id)
        if entry is None:
            entry = MissionEntry(event.tenant, event.mission_id, "", "", "")
            missions[event.mission_id] = entry
        entry.status = UNREADABLE
        self._broken[key] = reason
        self._unfinished.pop(key, None)

    def unreadable(self) -> dict[tuple[str, str], str]:
        """(tenant, mission id) of every mission with a fact that cannot be read, and why."""
        return dict(self._broken)

    def has(self, tenant: str, mission_id: str) -> bool:
        """Whether the tenant has started a mission of this id."""
        return mission_id in self._by_tenant.get(tenant, {})

    def of_tenant(self, tenant: str) -> list[MissionEntry]:
        """A tenant's missions, oldest first."""
        return list(self._by_tenant.get(tenant, {}).values())

    def unfinished(self) -> list[tuple[str, str]]:
        """(tenant, mission id) of every mission started and not finished, oldest first."""
        return list(self._unfinished)


@dataclass(frozen=True)
class Page:
    """Some of a tenant's missions, and the token of the next page ("" after the last)."""

    entries: list[MissionEntry]
    next_token: str


def page_of(entries: list[MissionEntry], size: int, token: str) -> Page:
    """One page of a listing that only ever grows at its end (missions in start order), so the
    token is the offset of the page's first entry and stays valid as missions start."""
    size = DEFAULT_PAGE_SIZE if size == 0 else min(size, MAX_PAGE_SIZE)
    start = 0
    if token:
        if not token.isdigit() or len(token) > 18 or int(token) > len(entries):
            raise PageTokenError(f"page_token {token[:40]!r} is not one this service gave")
        start = int(token)
    end = start + size
    return Page(entries[start:end], str(end) if end < len(entries) else "")
