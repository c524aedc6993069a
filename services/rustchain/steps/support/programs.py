"""Running one program as a child process: capped output, a timeout, and a stop that ends it all.

Both sandbox mechanisms and the unconfined run (a policy's `commands.sandbox: optional`) use this;
each says how its process tree is ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rustchain.steps.support.sandboxing import (
    ProgramOutputTooLargeError,
    ProgramResult,
    ProgramTimedOutError,
)

STOP_GRACE_SECONDS = 5.0
Process = asyncio.subprocess.Process
Started = Callable[[Process], Awaitable[None]]
Stopper = Callable[[Process], None]
Cleanup = Callable[[], Awaitable[None]]


def kill_group(process: Process) -> None:
    """SIGKILL the process's group (it was started in a session of its own)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


async def _nothing(process: Process) -> None:
    return None


async def _spawn(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    pass_fds: Sequence[int],
    *,
    new_session: bool,
) -> Process:
    """The program started with no input and both outputs piped."""
    return await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=new_session,
        pass_fds=tuple(pass_fds),
    )


async def _no_cleanup() -> None:
    return None


@dataclass
class RunningProgram:
    """A program started in the background: its pipes are the caller's to read; `end` stops its
    whole tree (or waits for its own exit) and releases what its mechanism held."""

    process: Process
    stop: Stopper = kill_group
    cleanup: Cleanup = _no_cleanup
    _ended: bool = field(default=False, init=False)

    @property
    def stdout(self) -> asyncio.StreamReader:
        """The program's standard output."""
        assert self.process.stdout is not None  # started with a pipe
        return self.process.stdout

    @property
    def stderr(self) -> asyncio.StreamReader:
        """The program's standard error."""
        assert self.process.stderr is not None  # started with a pipe
        return self.process.stderr

    async def end(self, *, kill: bool) -> int:
        """Its exit status once it is gone: killed (its whole tree) if `kill`, else awaited."""
        try:
            if kill and self.process.returncode is None:
                self.stop(self.process)
                try:
                    return await asyncio.wait_for(self.process.wait(), STOP_GRACE_SECONDS)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        self.process.kill()
            return await self.process.wait()
        finally:
            if not self._ended:
                self._ended = True
                await self.cleanup()


async def start_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stop: Stopper = kill_group,
    started: Started = _nothing,
    pass_fds: Sequence[int] = (),
    cleanup: Cleanup = _no_cleanup,
) -> RunningProgram:
    """Start argv in a session of its own, with piped outputs, and return once `started` has
    run; a failure of `started` stops it again. OSError from starting it propagates."""
    process = await _spawn(argv, cwd, env, pass_fds, new_session=True)
    running = RunningProgram(process, stop, cleanup)
    try:
        await started(process)
    except BaseException:
        await _stop(process, [], stop)
        await running.end(kill=True)
        raise
    return running


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_seconds: float,
    max_output_bytes: int,
    stop: Stopper = kill_group,
    started: Started = _nothing,
    pass_fds: Sequence[int] = (),
    new_session: bool = True,
) -> ProgramResult:
    """Run argv to its end; raises ProgramTimedOutError or ProgramOutputTooLargeError after `stop`.

    OSError from starting it (E2BIG, ENOENT...) propagates for the caller to name the parameter.
    """
    process = await _spawn(argv, cwd, env, pass_fds, new_session=new_session)
    assert process.stdout is not None and process.stderr is not None
    readers: list[asyncio.Future[bytes]] = []
    both: asyncio.Future[list[bytes]] | None = None
    try:
        await started(process)
        readers = [
            asyncio.ensure_future(_read_capped(process.stdout, max_output_bytes)),
            asyncio.ensure_future(_read_capped(process.stderr, max_output_bytes)),
        ]
        both = asyncio.gather(*readers)
        stdout, stderr = await asyncio.wait_for(both, timeout=timeout_seconds)
        status = await process.wait()
    except TimeoutError:
        await _stop(process, readers, stop)
        _seen(both)
        raise ProgramTimedOutError from None
    except BaseException:  # too much output, a cancelled step, a failed start of the sandbox
        await _stop(process, readers, stop)
        _seen(both)
        raise
    return ProgramResult(status, stdout, stderr)


def _seen(both: asyncio.Future[list[bytes]] | None) -> None:
    """Take the readers' outcome: `wait_for` leaves a gather it cancelled ended with an error
    nobody asked for, which asyncio would log as "never retrieved" (a step's cancel is not one)."""
    if both is not None and both.done() and not both.cancelled():
        both.exception()


async def _read_capped(stream: asyncio.StreamReader, cap: int) -> bytes:
    kept = bytearray()
    while chunk := await stream.read(65536):
        kept += chunk
        if len(kept) > cap:
            raise ProgramOutputTooLargeError
        # A fast writer keeps the buffer full, and a read from a full buffer never suspends:
        # yield so that the timeout can fire.
        await asyncio.sleep(0)
    return bytes(kept)


async def _stop(process: Process, readers: Sequence[asyncio.Future[bytes]], stop: Stopper) -> None:
    """End the program's whole tree and drain its pipes, so that its exit can be awaited."""
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    stop(process)

    async def drain_and_wait() -> None:
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                # A paused, unread pipe never reports its end, and the exit waits for both ends.
                while await stream.read(65536):
                    pass
        await process.wait()

    try:
        await asyncio.wait_for(drain_and_wait(), STOP_GRACE_SECONDS)
    except TimeoutError:
        # A descendant that left the group still holds the pipes: stop listening to them, and
        # make sure the process itself is gone.
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        transport = getattr(process, "_transport", None)
        if transport is not None:
            transport.close()
