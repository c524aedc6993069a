"""`python -I -m rustchain.platform.sandbox.landlock_launcher CONFIG PROGRAM...`: run one program
under Landlock, seccomp and rlimits, and end every process it started when it ends.

The launcher stays the program's parent as a child subreaper: a background or `setsid` descendant
whose parent exits is reparented to it, so when the program ends (or the launcher is told to stop)
it kills the whole tree, found through /proc, before it exits with the program's status.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

from rustchain.platform.sandbox.landlock import READ_FILE, READ_ONLY, READ_WRITE, restrict_to
from rustchain.platform.sandbox.seccomp import install_filter

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

_libc = ctypes.CDLL(None, use_errno=True)


class _StopRequestedError(Exception):
    """The executor asked the launcher to end the program (timeout, cancel, executor exit)."""


def _prctl(option: int, value: int) -> None:
    if _libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"prctl({option}): {os.strerror(number)}")


def _drop_capabilities() -> None:
    """No capability survives into the program, even when the executor runs as root."""
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
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
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = dict(
                    line.split(":", 1) for line in (entry / "status").read_text().splitlines()
                )
                if int(fields["Uid"].split()[0]) == uid:
                    count += int(fields["Threads"])
    return count


def _limits(config: Mapping[str, Any]) -> list[tuple[int, int]]:
    limits = config["limits"]
    mib = 1024 * 1024
    return [
        (resource.RLIMIT_CPU, limits["cpu_seconds"]),
        (resource.RLIMIT_AS, limits["memory_mb"] * mib),
        (resource.RLIMIT_NPROC, limits["processes"] + _tasks_of(os.getuid())),
        (resource.RLIMIT_FSIZE, limits["file_size_mb"] * mib),
        (resource.RLIMIT_NOFILE, limits["open_files"]),
        (resource.RLIMIT_CORE, 0),
    ]


def _confine_and_exec(config: Mapping[str, Any], program: list[str]) -> NoReturn:
    """In the forked child: limits, no privileges, Landlock, seccomp, then the program."""
    try:
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(number, signal.SIG_DFL)
        # Python ignores SIGXFSZ; a program over its file size limit must die as elsewhere.
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        limits = _limits(config)
        os.chdir(config["cwd"])
        for kind, value in limits:
            resource.setrlimit(kind, (value, value))
        _prctl(_PR_SET_NO_NEW_PRIVS, 1)
        _drop_capabilities()
        grants = [(Path(p), READ_ONLY) for p in _READ_ONLY]
        grants += [(Path(p), READ_FILE | 2) for p in _READ_WRITE_FILES]
        grants += [(Path(config["workspace"]), READ_WRITE), (Path(config["tmp"]), READ_WRITE)]
        restrict_to(grants, config["abi"])
        install_filter()
    except OSError as error:
        os.write(2, f"rustchain sandbox (landlock): setup failed: {error}\n".encode())
        os._exit(SETUP_FAILED)
    try:
        os.execvp(program[0], program)
    except OSError as error:
        os.write(2, f"rustchain sandbox: cannot run {program[0]}: {error.strerror}\n".encode())
        os._exit(NOT_FOUND if isinstance(error, FileNotFoundError) else CANNOT_EXECUTE)


def _parents() -> Iterator[tuple[int, int]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                yield int(entry.name), int(stat.rsplit(")", 1)[1].split()[1])


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


def end_tree() -> None:
    """Kill every descendant of this process and reap them; repeats until none is left."""
    me = os.getpid()
    while descendants := _descendants(me):
        for pid in descendants:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
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
    config, program = json.loads(arguments[0]), arguments[1:]
    with contextlib.suppress(PermissionError):
        os.setsid()
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, _stop)
    status = 128 + signal.SIGTERM
    try:
        if os.getppid() != config["parent"]:
            raise _StopRequestedError  # the executor ended before PDEATHSIG was armed
        child = os.fork()
        if child == 0:
            _confine_and_exec(config, program)
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
