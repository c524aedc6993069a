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
from rustchain.steps.support.programs import Process, RunningProgram, run_process, start_process
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
        launch = self._launcher(program)
        try:
            result = await run_process(
                launch.argv,
                cwd=program.cwd,
                env=launch.env,
                timeout_seconds=program.timeout_seconds,
                max_output_bytes=program.max_output_bytes,
                stop=_terminate,
                started=launch.started,
                pass_fds=launch.fds,
            )
        finally:
            launch.close()
        return dataclasses.replace(result, setup_seconds=launch.setup[0] if launch.setup else None)

    async def start(self, program: SandboxedProgram) -> RunningProgram:
        """Start the program under the launcher and return while it runs; the launcher ends its
        tree when told to, and when this executor ends (its parent-death signal)."""
        launch = self._launcher(program)

        async def remove_tmp() -> None:
            shutil.rmtree(launch.tmp, ignore_errors=True)

        try:
            return await start_process(
                launch.argv,
                cwd=program.cwd,
                env=launch.env,
                stop=_terminate,
                started=launch.started,
                pass_fds=launch.fds,
                cleanup=remove_tmp,
            )
        except BaseException:
            await remove_tmp()
            raise
        finally:
            launch.close_pipes()

    def _launcher(self, program: SandboxedProgram) -> _Launch:
        """The launcher's command line for the program, its environment, the private temporary
        folder it gets, and the pipe that times its set-up (the caller closes them)."""
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
        package_root = str(Path(rustchain.__file__).resolve().parent.parent)
        argv = [sys.executable, "-I", "-S", "-c", _BOOT, package_root]
        argv += [str(config[name]) for name in CONFIG_FIELDS]
        env = {**program.environment, "TMPDIR": str(tmp)}
        return _Launch([*argv, *program.argv], env, tmp, ready_read, [ready_write])


class _Launch:
    """The launcher's command line and environment, its temporary folder, and the pipe whose
    writer the program's exec closes: the end of the sandbox's set-up."""

    def __init__(
        self, argv: list[str], env: dict[str, str], tmp: Path, ready_read: int, own: list[int]
    ) -> None:
        self.argv, self.env, self.tmp = argv, env, tmp
        self.fds = tuple(own)
        self._ready_read = ready_read
        self._own = own
        self._open = [ready_read, *own]
        self.setup: list[float] = []
        self._spawned = time.perf_counter()

    async def started(self, _process: Process) -> None:
        """The launcher runs: drop our copy of the writer and time the program's exec."""
        if self._own:
            self._close(self._own.pop())  # the launcher's child holds the only writer now
        if await _closed(self._ready_read):
            self.setup.append(time.perf_counter() - self._spawned)

    def _close(self, fd: int) -> None:
        if fd in self._open:
            self._open.remove(fd)
            os.close(fd)

    def close_pipes(self) -> None:
        """Close the set-up pipe's ends still held here."""
        for fd in list(self._open):
            self._close(fd)

    def close(self) -> None:
        """Close the pipes and remove the temporary folder."""
        self.close_pipes()
        shutil.rmtree(self.tmp, ignore_errors=True)
