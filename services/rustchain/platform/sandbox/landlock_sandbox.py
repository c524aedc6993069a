"""The Landlock mechanism: each program under the launcher (landlock_launcher), which confines it
by Landlock rules and a seccomp filter, sets its rlimits, and ends its whole process tree.

For pods without user namespaces: Landlock needs no privilege. It cannot filter a network by host,
so a network grant is refused here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
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
        argv, env, tmp = self._launcher(program)
        try:
            return await run_process(
                argv,
                cwd=program.cwd,
                env=env,
                timeout_seconds=program.timeout_seconds,
                max_output_bytes=program.max_output_bytes,
                stop=_terminate,
            )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    async def start(self, program: SandboxedProgram) -> RunningProgram:
        """Start the program under the launcher and return while it runs; the launcher ends its
        tree when told to, and when this executor ends (its parent-death signal)."""
        argv, env, tmp = self._launcher(program)

        async def remove_tmp() -> None:
            shutil.rmtree(tmp, ignore_errors=True)

        try:
            return await start_process(
                argv, cwd=program.cwd, env=env, stop=_terminate, cleanup=remove_tmp
            )
        except BaseException:
            await remove_tmp()
            raise

    def _launcher(self, program: SandboxedProgram) -> tuple[list[str], dict[str, str], Path]:
        """The launcher's command line for the program, its environment, and the private
        temporary folder it gets (the caller removes it)."""
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
        package_root = str(Path(rustchain.__file__).resolve().parent.parent)
        argv = [sys.executable, "-I", "-S", "-c", _BOOT, package_root]
        argv += [str(config[name]) for name in CONFIG_FIELDS]
        return [*argv, *program.argv], {**program.environment, "TMPDIR": str(tmp)}, tmp
