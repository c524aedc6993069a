"""Waiting in tests: on a signal from a step's program (a named pipe, no polling), or, for
conditions that have no event to wait on (another process's state, a count in JetStream), a
bounded poll: the one place where tests poll, briefly, failing with what they waited for."""

from __future__ import annotations

import asyncio
import os
import select
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

POLL_SECONDS = 0.01
RETRY_SECONDS = 0.1
T = TypeVar("T")


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Return once `condition()` holds; fail the test after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting until {what}")
        await asyncio.sleep(POLL_SECONDS)


async def retried(
    operation: Callable[[], Awaitable[T]],
    errors: tuple[type[BaseException], ...],
    timeout: float,
    what: str,
) -> T:
    """`operation()`'s result once it stops failing with one of `errors` (a server that is
    recovering has no event to wait on); the last error, naming `what`, after `timeout` s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await operation()
        except errors as error:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s: {what}: {error}") from error
        await asyncio.sleep(RETRY_SECONDS)


def wait_until_sync(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """The same, for tests that are not async."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting until {what}")
        time.sleep(POLL_SECONDS)


class Signal:
    """A named pipe a test waits on, woken the moment a step's program writes a line to it."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        # Read-write, so opening never blocks and a line written later is waited for, not EOF.
        self._fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)

    def wait(self, timeout: float, what: str) -> None:
        """Block until a line arrives; fail the test after `timeout` seconds."""
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            raise AssertionError(f"timed out after {timeout:g} s waiting until {what}")
        os.read(self._fd, 4096)

    def send(self) -> None:
        """Write a line for a program reading the pipe (kept open until `close`)."""
        os.write(self._fd, b"go\n")

    def close(self) -> None:
        """Close the test's end."""
        os.close(self._fd)
