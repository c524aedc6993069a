"""The missions one executor process drives in the background: start, cancel, resume, stop.

A mission is driven by one task at a time, under a lease (`platform/storage/mission_leases`).
In one process (SQLite) the lease is "not driven here already". With several replicas on one
PostgreSQL store, a replica drives the missions whose leases it holds: it takes a mission it
starts when it has room, claims free or expired leases up to its capacity, renews its leases by
heartbeat, and stops a drive whose lease it lost (the fence refuses that drive's appends anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from rustchain.domain.runs.mission_run import MissionRun
from rustchain.domain.runs.run_events import RunEvent
from rustchain.executor.admission import StartMission
from rustchain.executor.application import ExecutorApplication, MissionNotFoundError
from rustchain.platform.storage.lease_fence import Lease, LeaseLostError
from rustchain.platform.storage.mission_leases import MissionLeases
from rustchain.platform.telemetry.instruments import instruments

_log = logging.getLogger(__name__)
MissionKey = tuple[str, str]
"""(tenant, mission id)."""
ELSEWHERE_POLL_SECONDS = 0.2
"""How often `finished` re-reads the store for a mission another replica drives."""


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
        self.leases: MissionLeases = application.leases
        self.changes = Changes()
        self._driving: dict[MissionKey, asyncio.Task[MissionRun]] = {}
        self._held: dict[MissionKey, Lease] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stop_listening: Callable[[], None] = lambda: None
        self.leases_lost = 0
        # Heartbeats done (renewals with their claims), for status and tests.
        self.beats = 0
        application.subscribe(self._recorded)

    def _recorded(self, run: MissionRun, facts: list[RunEvent]) -> None:
        self.changes.notify()

    @property
    def room(self) -> int:
        """How many more missions this replica may drive now."""
        return self.leases.replica.capacity - len(self._driving)

    async def start(self, command: StartMission) -> str:
        """Admit and record a start, then drive the mission here if this replica has room
        (else its lease stays free for another replica's claim); returns its id."""
        self._beat()
        take = self.room > 0
        mission_id = await self.application.admit_and_start(command, take=take)
        lease = self.leases.started(command.tenant, mission_id) if take else None
        if lease is not None:
            self._drive(lease)
        self.changes.notify()
        return mission_id

    def claim(self, tenant: str, mission_id: str) -> Lease | None:
        """The mission's lease when this process may drive it now (nobody drives it yet)."""
        if (tenant, mission_id) in self._driving:
            return None
        return self.leases.take(tenant, mission_id)

    def owns(self, tenant: str, mission_id: str) -> bool:
        """True while this process drives the mission."""
        return (tenant, mission_id) in self._driving

    def drive(self, tenant: str, mission_id: str) -> None:
        """Drive the mission to its end in a background task, unless it is driven already."""
        lease = self.claim(tenant, mission_id)
        if lease is not None:
            self._drive(lease)
            self._beat()

    def _drive(self, lease: Lease) -> None:
        key = (lease.tenant, lease.mission_id)
        task = asyncio.ensure_future(self.application.drive(lease.tenant, lease.mission_id, lease))
        self._driving[key] = task
        self._held[key] = lease

        def finished(done: asyncio.Task[MissionRun]) -> None:
            if self._driving.get(key) is done:
                del self._driving[key]
                self._held.pop(key, None)
            self._ended(lease, done)
            self.changes.notify()

        task.add_done_callback(finished)

    def _ended(self, lease: Lease, done: asyncio.Task[MissionRun]) -> None:
        mission = f"mission {lease.mission_id} of {lease.tenant}"
        if done.cancelled():
            return
        error = done.exception()
        if isinstance(error, LeaseLostError):
            self._lost(lease, str(error))
        elif isinstance(error, MissionNotFoundError):
            # A lease with no history (its start never committed with it): nothing to drive.
            _log.error("%s has a lease and no history; its lease is closed", mission)
            self.leases.close(lease)
        elif error is not None:
            _log.error("%s stopped: %r", mission, error)
            if not self.leases.shared:
                self.leases.release(lease)
            # A shared lease is left to lapse: a replica tries again after the lease period.
        else:
            self.leases.close(lease)

    def _lost(self, lease: Lease, why: str) -> None:
        self.leases_lost += 1
        instruments().leases_lost.add(1, {"tenant": lease.tenant})
        _log.warning("stopped driving mission %s of %s: %s", lease.mission_id, lease.tenant, why)

    async def finished(self, tenant: str, mission_id: str) -> MissionRun:
        """The run once its drive ends: here, or (shared leases) on whichever replica drives it."""
        task = self._driving.get((tenant, mission_id))
        if task is not None:
            return await asyncio.shield(task)
        run = self.application.load(tenant, mission_id)
        while self.leases.shared and not run.finished:
            # Driven elsewhere: its facts reach this process through the store alone.
            changed = self.changes.signal()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), ELSEWHERE_POLL_SECONDS)
            task = self._driving.get((tenant, mission_id))
            if task is not None:
                return await asyncio.shield(task)
            run = self.application.load(tenant, mission_id)
        return run

    def cancel(self, tenant: str, mission_id: str, reason: str) -> bool:
        """Ask a run to stop; False when it had already finished or been cancelled."""
        cancelled = self.application.cancel(tenant, mission_id, reason)
        self.changes.notify()
        return cancelled

    def resume_unfinished(self) -> list[MissionKey]:
        """Drive the unfinished missions the store holds (after a restart), as many as this
        replica may take; returns those it took."""
        missions = self.application.unfinished()
        if not self.leases.shared:
            for tenant, mission_id in missions:
                self.drive(tenant, mission_id)
            return missions
        self.leases.adopt(missions)
        taken = self._drive_claimed(self.leases.claim(self.room))
        self._beat()
        return taken

    def _drive_claimed(self, claimed: list[Lease]) -> list[MissionKey]:
        """Drive the missions of leases just claimed (but none already driven here)."""
        leases = [lease for lease in claimed if not self._busy(lease)]
        for lease in leases:
            self._drive(lease)
        return [(lease.tenant, lease.mission_id) for lease in leases]

    def _busy(self, lease: Lease) -> bool:
        # A lease this replica re-took while its old drive still runs: the old one is a zombie
        # whose appends the new epoch refuses; hand the lease back rather than drive it twice.
        if (lease.tenant, lease.mission_id) not in self._driving:
            return False
        self.leases.release(lease)
        return True

    def _beat(self) -> None:
        """Start the heartbeat (shared leases only), once, on the running loop; a lease a peer
        leaves free wakes it early."""
        if self.leases.shared and self._heartbeat is None:
            loop = asyncio.get_running_loop()

            def wake() -> None:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(self._wake.set)

            def changed(tenant: str, mission_id: str) -> None:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._chain_changed, tenant, mission_id)

            self._stop_listening = self.leases.listen(wake, changed)
            self._heartbeat = asyncio.ensure_future(self._heartbeats())

    def _chain_changed(self, tenant: str, mission_id: str) -> None:
        self.application.chain_changed(tenant, mission_id)
        self.changes.notify()

    async def _heartbeats(self) -> None:
        period = self.leases.replica.heartbeat_seconds
        failing = False
        while True:
            try:
                await self._renew_and_claim()
                self.beats += 1
            except Exception as error:  # a store outage: the fence keeps the writes safe
                if not failing:  # once per outage, not at every beat
                    owner = self.leases.replica.owner
                    _log.error("executor %s cannot renew its leases: %r", owner, error)
                failing = True
            else:
                if failing:
                    _log.warning("executor %s renews its leases again", self.leases.replica.owner)
                failing = False
            # The heartbeat's period is the product's behaviour, not a wait for a condition.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), period)
            self._wake.clear()

    async def _renew_and_claim(self) -> None:
        """Renew the leases held (stopping drives whose lease is lost), then claim free ones."""
        failed: Exception | None = None
        try:
            await self._renew()
        except Exception as error:  # claim all the same: a dead peer's missions wait for it
            failed = error
        if self.room > 0:
            self._drive_claimed(await asyncio.to_thread(self.leases.claim, self.room))
        if failed is not None:
            raise failed

    async def _renew(self) -> None:
        held = dict(self._held)
        kept = await asyncio.to_thread(self.leases.renew, held.values())
        for key, lease in held.items():
            task = self._driving.get(key)
            if lease not in kept and task is not None and self._held.get(key) == lease:
                # Stop before another replica's attempt runs beside this one's.
                del self._driving[key]
                del self._held[key]
                task.cancel()
                self._lost(lease, "its lease expired or another executor took it over")

    async def stop(self) -> None:
        """Cancel the drives in flight and give their leases up; the store lets a later start
        (or another replica) resume them."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
            await asyncio.to_thread(self._stop_listening)
        tasks = list(self._driving.values())
        held = list(self._held.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for lease in held:
            self.leases.release(lease)
