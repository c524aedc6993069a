"""The missions one executor process drives in the background: start, cancel, resume, stop.

A mission is driven by one task at a time. `claim` is where that ownership is decided: in one
process it is "not driven here already"; several replicas on one store (issue 15) will decide it
with a lease, and the rest of this class stays as it is.
"""

from __future__ import annotations

import asyncio
import logging

from rustchain.domain.runs.mission_run import MissionRun
from rustchain.domain.runs.run_events import RunEvent
from rustchain.executor.admission import StartMission
from rustchain.executor.application import ExecutorApplication

_log = logging.getLogger(__name__)
MissionKey = tuple[str, str]
"""(tenant, mission id)."""


class Changes:
    """Wakes every waiting watch when this process records a fact."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def signal(self) -> asyncio.Event:
        """The event the next change will set."""
        return self._event

    def notify(self) -> None:
        """Something was recorded: wake the waiters, and arm a fresh event for the next change."""
        event, self._event = self._event, asyncio.Event()
        event.set()


class MissionDriver:
    """Owns the background drives of one executor process on its event loop."""

    def __init__(self, application: ExecutorApplication) -> None:
        self.application = application
        self.changes = Changes()
        self._driving: dict[MissionKey, asyncio.Task[MissionRun]] = {}
        application.subscribe(self._recorded)

    def _recorded(self, run: MissionRun, facts: list[RunEvent]) -> None:
        self.changes.notify()

    async def start(self, command: StartMission) -> str:
        """Admit and record a start, then drive the mission; returns its id."""
        mission_id = await self.application.admit_and_start(command)
        self.drive(command.tenant, mission_id)
        self.changes.notify()
        return mission_id

    def claim(self, tenant: str, mission_id: str) -> bool:
        """True when this process may drive the mission now (nobody here drives it yet)."""
        return (tenant, mission_id) not in self._driving

    def owns(self, tenant: str, mission_id: str) -> bool:
        """True while this process drives the mission."""
        return (tenant, mission_id) in self._driving

    def drive(self, tenant: str, mission_id: str) -> None:
        """Drive the mission to its end in a background task, unless it is driven already."""
        if not self.claim(tenant, mission_id):
            return
        key = (tenant, mission_id)
        task = asyncio.ensure_future(self.application.drive(tenant, mission_id))
        self._driving[key] = task

        def finished(done: asyncio.Task[MissionRun]) -> None:
            if self._driving.get(key) is done:
                del self._driving[key]
            if not done.cancelled() and done.exception() is not None:
                _log.error("mission %s of %s stopped: %r", mission_id, tenant, done.exception())
            self.changes.notify()

        task.add_done_callback(finished)

    async def finished(self, tenant: str, mission_id: str) -> MissionRun:
        """The run once its drive here ends (the stored run if it is not driven here)."""
        task = self._driving.get((tenant, mission_id))
        if task is None:
            return self.application.load(tenant, mission_id)
        return await asyncio.shield(task)

    def cancel(self, tenant: str, mission_id: str, reason: str) -> bool:
        """Ask a run to stop; False when it had already finished or been cancelled."""
        cancelled = self.application.cancel(tenant, mission_id, reason)
        self.changes.notify()
        return cancelled

    def resume_unfinished(self) -> list[MissionKey]:
        """Drive every mission the store holds unfinished (after a restart); returns them."""
        missions = self.application.unfinished()
        for tenant, mission_id in missions:
            self.drive(tenant, mission_id)
        return missions

    async def stop(self) -> None:
        """Cancel the drives in flight; the store lets a later start resume them."""
        tasks = list(self._driving.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
