"""`python -I -m rustchain.platform.sandbox.landlock_launcher CONFIG PROGRAM...`: run one program
under Landlock, seccomp and rlimits, and end every process it started when it ends.

The launcher stays the program's parent as a child subreaper: a background or `setsid` descendant
whose parent exits is reparented to it, so when the program ends (or the launcher is told to stop)
it kills the whole tree, found through /proc, before it exits with the program's status.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys

from rustchain.platform.sandbox.landlock import (
    READ_FILE,
    READ_ONLY,
    READ_WRITE,
    WRITE_FILE,
    restrict_to,
)
from rustchain.platform.sandbox.seccomp import install_filter

# Its start is part of every command's cost: no typing, pathlib, json or contextlib at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import NoReturn

_PR_SET_PDEATHSIG, _PR_CAPBSET_DROP, _PR_SET_CHILD_SUBREAPER = 1, 24, 36
_PR_SET_NO_NEW_PRIVS, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 38, 47, 4
_CAPABILITY_VERSION_3 = 0x20080522
SETUP_FAILED, CANNOT_EXECUTE, NOT_FOUND = 125, 126, 127

# What programs need besides the workspace: the system's programs and libraries, the loader's
# cache, the time zone and user names; nothing else of /etc (or /proc, /run, /home, /tmp...).
_READ_ONLY = (
    *("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"),
    *("/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf"),
    *("/dev/zero", "/dev/random", "/dev/urandom"),
)
_READ_WRITE_FILES = ("/dev/null", "/dev/full")
# The launcher's arguments before the program's, in order (all numbers but the paths).
CONFIG_FIELDS = (
    *("parent", "abi", "workspace", "tmp", "cwd"),
    *("cpu_seconds", "memory_mb", "processes", "file_size_mb", "open_files"),
    "read_only",  # JSON: folders the program may read besides the system's (a toolchain)
    "ready_fd",  # closed by the program's exec: the executor times the set-up to that moment
)

_libc = ctypes.CDLL(None, use_errno=True)


class _StopRequestedError(Exception):
    """The executor asked the launcher to end the program (timeout, cancel, executor exit)."""


def _prctl(option: int, value: int) -> None:
    if _libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"prctl({option}): {os.strerror(number)}")


def _drop_capabilities() -> None:
    """No capability survives into the program, even when the executor runs as root."""
    with open("/proc/sys/kernel/cap_last_cap") as file:
        last = int(file.read())
    for capability in range(last + 1):
        # Without CAP_SETPCAP (an unprivileged executor) there is nothing to drop.
        _libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0)
    _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    if _libc.capset(header, data) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"capset: {os.strerror(number)}")


def _tasks_of(uid: int) -> int:
    """How many tasks the user runs now (RLIMIT_NPROC counts them all, not only this tree's)."""
    if uid == 0:
        return 0  # the kernel does not apply RLIMIT_NPROC to root of the initial user namespace
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/status") as file:
                    fields = dict(line.split(":", 1) for line in file.read().splitlines())
                if int(fields["Uid"].split()[0]) == uid:
                    count += int(fields["Threads"])
            except (OSError, KeyError, ValueError):
                continue
    return count


def _limits(config: dict[str, str]) -> list[tuple[int, int]]:
    mib = 1024 * 1024
    processes = int(config["processes"]) + _tasks_of(os.getuid())
    return [
        (resource.RLIMIT_CPU, int(config["cpu_seconds"])),
        (resource.RLIMIT_AS, int(config["memory_mb"]) * mib),
        (resource.RLIMIT_NPROC, processes),
        (resource.RLIMIT_FSIZE, int(config["file_size_mb"]) * mib),
        (resource.RLIMIT_NOFILE, int(config["open_files"])),
        (resource.RLIMIT_CORE, 0),
    ]


def _which(name: str) -> str | None:
    """The file the program name means, as execvp would find it on PATH."""
    if "/" in name:
        return name
    for folder in os.environ.get("PATH", "").split(":"):
        candidate = f"{folder or '.'}/{name}"
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _confine_and_exec(config: dict[str, str], program: list[str]) -> NoReturn:
    """In the forked child: limits, no privileges, Landlock, seccomp, then the program."""
    try:
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(number, signal.SIG_DFL)
        # Python ignores SIGXFSZ; a program over its file size limit must die as elsewhere.
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        limits = _limits(config)
        # Looked up before Landlock: afterwards nothing outside the granted paths can be read,
        # the Python modules os.execvp would import included.
        executable = _which(program[0])
        os.chdir(config["cwd"])
        for kind, value in limits:
            resource.setrlimit(kind, (value, value))
        _prctl(_PR_SET_NO_NEW_PRIVS, 1)
        _drop_capabilities()
        grants = [(path, READ_ONLY) for path in _READ_ONLY]
        grants += [(path, READ_ONLY) for path in json.loads(config["read_only"])]
        grants += [(path, READ_FILE | WRITE_FILE) for path in _READ_WRITE_FILES]
        grants += [(config["workspace"], READ_WRITE), (config["tmp"], READ_WRITE)]
        restrict_to(grants, int(config["abi"]))
        install_filter()
    except OSError as error:
        os.write(2, f"rustchain sandbox (landlock): setup failed: {error}\n".encode())
        os._exit(SETUP_FAILED)
    try:
        if executable is None:
            raise FileNotFoundError(2, "not found on PATH")
        # Closed by the exec itself, so the executor sees the end of the set-up at that moment.
        os.set_inheritable(int(config["ready_fd"]), False)
        os.execv(executable, program)
    except OSError as error:
        os.write(2, f"rustchain sandbox: cannot run {program[0]}: {error.strerror}\n".encode())
        os._exit(NOT_FOUND if isinstance(error, FileNotFoundError) else CANNOT_EXECUTE)


def _parents() -> Iterator[tuple[int, int]]:
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as file:
                    yield int(name), int(file.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in _parents():
        children.setdefault(parent, []).append(pid)
    found, frontier = [], [root]
    while frontier:
        kids = children.get(frontier.pop(), [])
        found += kids
        frontier += kids
    return found


def _has_children() -> bool:
    """Whether any process is left: a subreaper with no child has no descendant either (each
    orphan is reparented to it before its parent can be reaped)."""
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return False
    return True


def end_tree() -> None:
    """Kill every descendant of this process and reap them; repeats until none is left."""
    me = os.getpid()
    while _has_children() and (descendants := _descendants(me)):
        for pid in descendants:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        try:
            os.waitpid(-1, 0)
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            return


def _stop(number: int, frame: object) -> None:
    raise _StopRequestedError


def main(arguments: list[str]) -> NoReturn:
    """Run the program confined; exit with its status once nothing it started is left."""
    count = len(CONFIG_FIELDS)
    config, program = dict(zip(CONFIG_FIELDS, arguments[:count], strict=True)), arguments[count:]
    if os.getsid(0) != os.getpid():  # not already a session leader
        os.setsid()
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, _stop)
    status = 128 + signal.SIGTERM
    try:
        if os.getppid() != int(config["parent"]):
            raise _StopRequestedError  # the executor ended before PDEATHSIG was armed
        child = os.fork()
        if child == 0:
            _confine_and_exec(config, program)
        os.close(int(config["ready_fd"]))  # the child's copy alone stays open until its exec
        status = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
        if status < 0:
            status = 128 - status
    except _StopRequestedError:
        pass
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    end_tree()
    os._exit(status)


if __name__ == "__main__":
    main(sys.argv[1:])
