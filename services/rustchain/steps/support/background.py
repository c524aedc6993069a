"""Programs a mission runs in the background: what `process_start` hands the executor's
per-mission supervisor, what it gets back, and the role the supervisor plays.

The supervisor lives in the executor (it owns the processes until the mission ends); steps know
only this interface, handed to them in their StepContext.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from rustchain.steps.support.sandboxing import SandboxedProgram

if TYPE_CHECKING:
    from rustchain.steps.support.programs import RunningProgram

Launch = Callable[[SandboxedProgram], Awaitable["RunningProgram"]]
"""Starts a program confined (the sandbox's `start`), or unconfined where the policy allows."""


@dataclass(frozen=True)
class BackgroundStart:
    """One program to start and keep: how, where its outputs go, and the mission's cap."""

    program: SandboxedProgram
    launch: Launch
    # Open descriptors of the two log files beneath the workspace; the supervisor owns them.
    stdout_fd: int
    stderr_fd: int
    max_log_bytes: int  # per stream; what comes after is read and dropped
    max_processes: int  # running at once in this mission (commands.max_background_processes)


@dataclass(frozen=True)
class BackgroundEnd:
    """How a background program ended: killed by this request, or already gone by itself."""

    killed: bool
    status: int | None  # None: unknown (a handle from before the executor restarted)


class BackgroundProcessError(Exception):
    """A request the supervisor refuses: an unknown handle, the cap reached, a mission ended."""


class MissionProcesses(Protocol):
    """The background programs of one mission: started, looked up and killed by handle only."""

    async def start(self, request: BackgroundStart) -> str:
        """Start the program and keep it until it is killed or the mission ends; its handle
        (an opaque, unguessable text that names it within this mission only)."""
        ...

    async def kill(self, handle: str) -> BackgroundEnd:
        """End the program (its whole tree) that `handle` names in this mission."""
        ...
