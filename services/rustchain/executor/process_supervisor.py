"""The background programs of one mission (`process_start`), owned by the executor until the
mission ends: started under a cap, their outputs copied (bounded) to workspace files, killed only
by the handle their start returned, and all killed when the mission ends.

After an executor restart nothing of this survives: the programs died with the executor (the
sandbox's parent-death signal), and the handles its earlier steps recorded are reported as gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from rustchain.steps.support.background import (
    BackgroundEnd,
    BackgroundProcessError,
    BackgroundStart,
)
from rustchain.steps.support.programs import STOP_GRACE_SECONDS, RunningProgram

HANDLE_PREFIX = "proc_"
_CHUNK = 65536


def new_handle() -> str:
    """An opaque handle: 128 random bits, so that no mission can guess another's."""
    return HANDLE_PREFIX + secrets.token_hex(16)


@dataclass
class _Kept:
    """A program started by the mission: its process, and the task that copies its outputs
    and waits for its end."""

    program: RunningProgram
    watcher: asyncio.Task[int]


async def _copy(stream: asyncio.StreamReader, fd: int, cap: int) -> None:
    """Copy a pipe to a log file up to `cap` bytes; read and drop the rest (a full pipe would
    stop the program)."""
    room = cap
    while chunk := await stream.read(_CHUNK):
        if room > 0:
            kept = chunk[:room]
            with contextlib.suppress(OSError):  # a full disk stops the log, not the program
                os.write(fd, kept)
            room -= len(kept)


class MissionProcessSupervisor:
    """Background programs of one mission (implements steps' MissionProcesses)."""

    def __init__(self, mission: str, gone: Iterable[str] = ()) -> None:
        self.mission = mission
        self._kept: dict[str, _Kept] = {}
        self._ended: dict[str, int] = {}
        # Handles recorded before this executor started driving the mission: their programs
        # died with the executor that started them.
        self._gone = set(gone)
        self._starting = 0
        self._closed = False

    @property
    def running(self) -> int:
        """How many of its programs are running (or starting) now."""
        return self._starting + sum(1 for k in self._kept.values() if not k.watcher.done())

    async def start(self, request: BackgroundStart) -> str:
        """Start the program under the cap, copy its outputs to the log files, return its handle."""
        try:
            if self._closed:
                raise BackgroundProcessError(f"mission {self.mission} has ended")
            if self.running >= request.max_processes:
                raise BackgroundProcessError(
                    f"the mission already runs {self.running} background processes, its cap "
                    f"(commands.max_background_processes={request.max_processes}): kill one "
                    "with process_kill first"
                )
            self._starting += 1
            try:
                program = await request.launch(request.program)
            finally:
                self._starting -= 1
        except BaseException:
            os.close(request.stdout_fd)
            os.close(request.stderr_fd)
            raise
        handle = new_handle()
        watcher = asyncio.ensure_future(self._watch(handle, program, request))
        self._kept[handle] = _Kept(program, watcher)
        if self._closed:  # the mission ended while the program was starting
            await self._end(handle, kill=True)
            raise BackgroundProcessError(f"mission {self.mission} has ended")
        return handle

    async def _watch(self, handle: str, program: RunningProgram, request: BackgroundStart) -> int:
        try:
            await asyncio.gather(
                _copy(program.stdout, request.stdout_fd, request.max_log_bytes),
                _copy(program.stderr, request.stderr_fd, request.max_log_bytes),
            )
            status = await program.end(kill=False)
        finally:
            os.close(request.stdout_fd)
            os.close(request.stderr_fd)
        self._ended[handle] = status
        return status

    async def kill(self, handle: str) -> BackgroundEnd:
        """Kill the program `handle` names in this mission; any other handle is refused."""
        if handle in self._ended:
            return BackgroundEnd(killed=False, status=self._ended[handle])
        if handle in self._kept:
            return BackgroundEnd(killed=True, status=await self._end(handle, kill=True))
        if handle in self._gone:
            raise BackgroundProcessError(
                f"the process of handle '{handle}' is gone: it died with the executor that "
                "started it (the mission was resumed after the executor stopped)"
            )
        raise BackgroundProcessError(
            f"no process of this mission has the handle '{handle}': process_kill ends only "
            "processes this mission's process_start steps started, named by the handle they "
            "returned"
        )

    async def _end(self, handle: str, *, kill: bool) -> int:
        kept = self._kept[handle]
        status = await kept.program.end(kill=kill)
        # The watcher ends once the pipes close (the tree is gone with the sandbox's PID
        # namespace or launcher); unconfined, a descendant that left the group may keep them.
        try:
            await asyncio.wait_for(asyncio.shield(kept.watcher), STOP_GRACE_SECONDS)
        except TimeoutError:
            kept.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await kept.watcher
        self._ended[handle] = status
        return status

    async def close(self) -> None:
        """The mission ended: kill every program it started that is still running."""
        self._closed = True
        running = [h for h, k in self._kept.items() if h not in self._ended]
        await asyncio.gather(*(self._end(h, kill=True) for h in running), return_exceptions=True)
