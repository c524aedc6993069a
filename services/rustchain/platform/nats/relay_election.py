"""One active relay per store: the holder of the store's lock relays, the others stand by.

With PostgreSQL the lock is a session advisory lock keyed by the store's name, so any number of
relay replicas may run: the one that takes the lock relays, from the positions the store tracks
(read when it becomes active, never before), and the others try again every period. When the
holder dies its session ends, the lock is free and the next standby to try takes over where the
tracked positions say; anything the dead holder had published past them is skipped as held or
dropped by JetStream's Nats-Msg-Id duplicate window. With SQLite there is one relay, as always.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from rustchain.platform.storage.advisory_lock import PostgresAdvisoryLock, advisory_key
from rustchain.platform.storage.event_store import EventStoreSettings

STANDBY_VARIABLE = "RUSTCHAIN_RELAY_STANDBY_SECONDS"
DEFAULT_STANDBY_SECONDS = 1.0
Report = Callable[[str], None]
ActiveWork = Callable[[asyncio.Event], Awaitable[None]]
"""What the elected process does until the event it is given is set (the relay's run)."""


class ElectionSettingError(ValueError):
    """RUSTCHAIN_RELAY_STANDBY_SECONDS is not a positive number of seconds."""


class ActiveLock(Protocol):
    """A lock one process of a store holds at a time, and loses when it dies."""

    async def try_acquire(self) -> bool:
        """Take the lock if it is free (True also when this process holds it already)."""

    async def held(self) -> bool:
        """Whether this process still holds it."""

    async def release(self) -> None:
        """Give it up."""


class SoleRelay:
    """The lock of a SQLite store: its one relay always holds it (one process per file)."""

    async def try_acquire(self) -> bool:
        """Always taken."""
        return True

    async def held(self) -> bool:
        """Always held."""
        return True

    async def release(self) -> None:
        """Nothing to give up."""


def relay_lock(settings: EventStoreSettings) -> ActiveLock:
    """The lock that elects the active relay of a store: advisory with PostgreSQL."""
    if settings.database_url:
        return PostgresAdvisoryLock(settings.database_url, advisory_key("relay", settings.name))
    return SoleRelay()


@dataclass(frozen=True)
class ElectionSettings:
    """How often a standby tries the lock, and the holder checks that it still has it."""

    period: float = DEFAULT_STANDBY_SECONDS

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ElectionSettings:
        """The period from RUSTCHAIN_RELAY_STANDBY_SECONDS (default 1 s)."""
        env = os.environ if environ is None else environ
        text = env.get(STANDBY_VARIABLE) or str(DEFAULT_STANDBY_SECONDS)
        try:
            period = float(text)
        except ValueError:
            period = 0.0
        if not 0 < period <= 3600:
            raise ElectionSettingError(
                f"{STANDBY_VARIABLE} must be a number of seconds between 0 and 3600, found {text!r}"
            )
        return cls(period)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _work_while_held(
    lock: ActiveLock, work: ActiveWork, stop: asyncio.Event, period: float
) -> bool:
    """Run the work until `stop`, its end, or the lock's loss (then True)."""
    work_stop = asyncio.Event()
    task = asyncio.ensure_future(work(work_stop))
    lost = False
    try:
        while not task.done() and not stop.is_set():
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait(
                    {task, stopping}, timeout=period, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                stopping.cancel()
            if not task.done() and not stop.is_set() and not await lock.held():
                lost = True
                break
    finally:
        work_stop.set()
        await task
    return lost


async def run_when_elected(
    lock: ActiveLock,
    work: ActiveWork,
    stop: asyncio.Event,
    settings: ElectionSettings,
    report: Report,
) -> None:
    """Stand by until this process holds the lock, then run `work` while it does; until `stop`.

    The work is started afresh on each election, so it reads the store's positions then.
    """
    standing_by = False
    try:
        while not stop.is_set():
            if not await lock.try_acquire():
                if not standing_by:
                    report(
                        f"standby: another relay is active on this store; trying again every"
                        f" {settings.period:g} s"
                    )
                    standing_by = True
                await _wait(stop, settings.period)
                continue
            standing_by = False
            report("active: this process relays the store's events")
            if await _work_while_held(lock, work, stop, settings.period):
                report("lost the store's lock (its database session ended); standing by")
            else:
                return
    finally:
        await lock.release()
