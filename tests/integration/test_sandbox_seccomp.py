"""The Landlock sandbox's seccomp filter decides as documented, on both architectures it knows:
its classic BPF is run here by a small interpreter, and once for real in a child process."""

from __future__ import annotations

import errno
import os
import struct
import subprocess
import sys

import pytest

from rustchain.platform.sandbox.seccomp import filter_program

ALLOW, KILL = 0x7FFF0000, 0x80000000
ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
NUMBERS = {
    "x86_64": {"read": 0, "socket": 41, "socketpair": 53, "clone": 56, "clone3": 435},
    "aarch64": {"read": 63, "socket": 198, "socketpair": 199, "clone": 220, "clone3": 435},
}
NUMBERS["x86_64"] |= {"unshare": 272, "io_uring_setup": 425, "keyctl": 250}
NUMBERS["aarch64"] |= {"unshare": 97, "io_uring_setup": 425, "keyctl": 219}
CLONE_NEWUSER, SIGCHLD = 0x10000000, 17


def decide(program: bytes, nr: int, arch: int, arg0: int = 0) -> int:
    """What the filter returns for one system call (seccomp_data: nr, arch, ip, args)."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    ops = [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    accumulator, pc = 0, 0
    while True:
        code, jt, jf, k = ops[pc]
        if code == 0x20:
            accumulator = struct.unpack_from("=I", data, k)[0]
            pc += 1
        elif code == 0x06:
            return k
        else:
            taken = {0x15: accumulator == k, 0x35: accumulator >= k, 0x45: bool(accumulator & k)}
            pc += 1 + (jt if taken[code] else jf)


def refused(code: int) -> int:
    return 0x00050000 | code


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_filter_refuses_sockets_io_uring_and_namespaces_and_allows_the_rest(
    machine: str,
) -> None:
    program, arch, n = filter_program(machine), ARCH[machine], NUMBERS[machine]

    assert decide(program, n["read"], arch) == ALLOW
    assert decide(program, n["socket"], arch, 2) == refused(errno.EACCES)  # AF_INET
    assert decide(program, n["socket"], arch, 1) == refused(errno.EACCES)  # AF_UNIX too
    assert decide(program, n["socketpair"], arch, 1) == ALLOW
    assert decide(program, n["socketpair"], arch, 2) == refused(errno.EAFNOSUPPORT)
    assert decide(program, n["clone"], arch, SIGCHLD) == ALLOW
    assert decide(program, n["clone"], arch, CLONE_NEWUSER | SIGCHLD) == refused(errno.EPERM)
    assert decide(program, n["clone3"], arch) == refused(errno.ENOSYS)
    assert decide(program, n["unshare"], arch, CLONE_NEWUSER) == refused(errno.EPERM)
    assert decide(program, n["io_uring_setup"], arch) == refused(errno.ENOSYS)
    assert decide(program, n["keyctl"], arch) == refused(errno.EPERM)
    assert decide(program, n["read"], 0x40000003) == KILL  # i386 calls on a 64-bit kernel


def test_the_x32_system_calls_of_x86_64_are_refused() -> None:
    assert decide(filter_program("x86_64"), 0x40000000 | 41, ARCH["x86_64"]) == refused(
        errno.ENOSYS
    )


@pytest.mark.skipif(os.uname().machine not in ARCH, reason="no seccomp table for this machine")
def test_the_installed_filter_refuses_a_socket_and_keeps_pipes() -> None:
    script = (
        "import ctypes, os, socket\n"
        "ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)\n"
        "from rustchain.platform.sandbox.seccomp import install_filter\n"
        "install_filter()\n"
        "a, b = socket.socketpair()\n"
        "a.sendall(b'pipe ok'); print(b.recv(16).decode())\n"
        "try:\n"
        "    socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "except PermissionError:\n"
        "    print('socket refused')\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )

    assert done.stdout.splitlines() == ["pipe ok", "socket refused"], done.stderr
