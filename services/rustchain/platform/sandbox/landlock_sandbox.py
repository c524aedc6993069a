"""The Landlock mechanism: each program under the launcher (landlock_launcher), which confines it
by Landlock rules and a seccomp filter, sets its rlimits, and ends its whole process tree.

For pods without user namespaces: Landlock needs no privilege. It cannot filter a network by host,
so a network grant is refused here.

The sandbox's set-up time is measured from starting the launcher to the program's exec: the
launcher's child holds a pipe that the exec closes (close-on-exec), and the executor waits for
its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import rustchain
from rustchain.platform.sandbox.landlock import landlock_abi
from rustchain.platform.sandbox.landlock_launcher import CONFIG_FIELDS
from rustchain.platform.sandbox.seccomp import SeccompError, filter_program
from rustchain.steps.support.programs import Process, run_process
from rustchain.steps.support.sandboxing import ProgramResult, SandboxedProgram, SandboxRefusedError

# The launcher is imported from the package this executor runs (an editable or wheel install
# alike), with -I so that no PYTHON* variable of the step's environment applies, and -S (no site:
# it needs only the standard library) to start sooner.
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from rustchain.platform.sandbox.landlock_launcher import main; main(sys.argv[1:])"
)


def probe() -> tuple[int, str | None]:
    """The kernel's Landlock ABI, and why Landlock cannot confine programs here (or None)."""
    abi = landlock_abi()
    if abi < 1:
        return abi, "the kernel has no Landlock (or it is not enabled in the LSM list)"
    try:
        filter_program()
    except SeccompError as error:
        return abi, str(error)
    return abi, None


_READY_TIMEOUT_SECONDS = 10.0


def _resolve_once(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


async def _closed(fd: int) -> bool:
    """Whether every writer of a (non-blocking) pipe closed it within the timeout."""
    loop = asyncio.get_running_loop()
    deadline = time.perf_counter() + _READY_TIMEOUT_SECONDS
    while True:
        try:
            if not os.read(fd, 64):
                return True
        except BlockingIOError:
            ready: asyncio.Future[None] = loop.create_future()
            # The callback may run again before the waiter resumes: set the result once.
            loop.add_reader(fd, _resolve_once, ready)
            try:
                await asyncio.wait_for(ready, max(deadline - time.perf_counter(), 0.0))
            except TimeoutError:
                return False
            finally:
                loop.remove_reader(fd)


def _terminate(process: Process) -> None:
    """Ask the launcher to end the tree (it kills every descendant, then exits)."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)


class LandlockSandbox:
    """Programs under Landlock and seccomp, launched by a small Python launcher."""

    def __init__(self, abi: int) -> None:
        self.abi = abi

    @property
    def name(self) -> str:
        """landlock, with the kernel's ABI."""
        return f"landlock (ABI {self.abi})"

    @property
    def unavailable(self) -> str | None:
        """None: it was probed when chosen."""
        return None

    async def run(self, program: SandboxedProgram) -> ProgramResult:
        """Run the program under the launcher, with a private temporary folder."""
        if program.network is not None:
            raise SandboxRefusedError(
                "the Landlock sandbox cannot grant network access by host (Landlock filters TCP "
                "by port only): commands.network_hosts needs the bubblewrap sandbox"
            )
        tmp = Path(tempfile.mkdtemp(prefix="rustchain-step-"))
        config = {
            "parent": os.getpid(),
            "abi": self.abi,
            "workspace": program.workspace,
            "tmp": tmp,
            "cwd": program.cwd,
            **program.limits.model_dump(),
            "read_only": json.dumps([str(p) for p in program.read_only]),
        }
        ready_read, ready_write = os.pipe()
        os.set_blocking(ready_read, False)
        config["ready_fd"] = ready_write
        setup: list[float] = []
        own = [ready_write]

        async def started(_process: Process) -> None:
            os.close(own.pop())  # the launcher's child holds the only writer now
            if await _closed(ready_read):
                setup.append(time.perf_counter() - spawned)

        package_root = str(Path(rustchain.__file__).resolve().parent.parent)
        argv = [sys.executable, "-I", "-S", "-c", _BOOT, package_root]
        argv += [str(config[name]) for name in CONFIG_FIELDS]
        spawned = time.perf_counter()
        try:
            result = await run_process(
                [*argv, *program.argv],
                cwd=program.cwd,
                env={**program.environment, "TMPDIR": str(tmp)},
                timeout_seconds=program.timeout_seconds,
                max_output_bytes=program.max_output_bytes,
                stop=_terminate,
                started=started,
                pass_fds=(ready_write,),
            )
        finally:
            for fd in (ready_read, *own):
                os.close(fd)
            shutil.rmtree(tmp, ignore_errors=True)
        return dataclasses.replace(result, setup_seconds=setup[0] if setup else None)
