"""A seccomp filter (classic BPF, written with ctypes) for programs under Landlock.

Landlock filters TCP by port and nothing else of the network, and does not cover Unix sockets
bound to a path: so no socket may be created at all (socketpair for pipes between a program's
own processes stays), and io_uring (which bypasses both filters) and new namespaces are refused.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_RET_ALLOW, _RET_ERRNO, _RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_NR, _ARCH, _ARG0 = 0, 4, 16  # offsets in struct seccomp_data (arguments: low 32 bits first)
_AF_UNIX = 1
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
_NEW_NAMESPACES = 0x7E020000

# audit arch, then the numbers of: socket, socketpair, clone, clone3, unshare, setns,
# io_uring_setup, io_uring_enter, io_uring_register, add_key, request_key, keyctl
_TABLES = {
    "x86_64": (0xC000003E, 41, 53, 56, 435, 272, 308, 425, 426, 427, 248, 249, 250),
    "aarch64": (0xC00000B7, 198, 199, 220, 435, 97, 268, 425, 426, 427, 217, 218, 219),
}


class SeccompError(OSError):
    """The kernel refused the filter, or this machine's architecture has no table here."""


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def _refuse(number: int, code: int) -> list[bytes]:
    return [_op(_JEQ_K, number, 0, 1), _op(_RET_K, _RET_ERRNO | code)]


def filter_program(machine: str | None = None) -> bytes:
    """The filter's instructions for this machine (or the one named)."""
    table = _TABLES.get(machine or os.uname().machine)
    if table is None:
        raise SeccompError(errno.ENOSYS, f"no seccomp table for {machine or os.uname().machine}")
    arch, socket, socketpair, clone, clone3, unshare, setns, *refused = table
    ops = [_op(_LD_W_ABS, _ARCH), _op(_JEQ_K, arch, 1, 0), _op(_RET_K, _RET_KILL_PROCESS)]
    ops.append(_op(_LD_W_ABS, _NR))
    if arch == 0xC000003E:  # the x32 system calls of x86_64
        ops += [_op(_JGE_K, 0x40000000, 0, 1), _op(_RET_K, _RET_ERRNO | errno.ENOSYS)]
    ops += _refuse(socket, errno.EACCES)
    ops += _refuse(clone3, errno.ENOSYS)  # its flags are out of reach; C libraries fall back
    ops += _refuse(unshare, errno.EPERM) + _refuse(setns, errno.EPERM)
    for number in refused:
        ops += _refuse(number, errno.ENOSYS if number in (425, 426, 427) else errno.EPERM)
    ops += [
        _op(_JEQ_K, socketpair, 0, 4),
        _op(_LD_W_ABS, _ARG0),
        _op(_JEQ_K, _AF_UNIX, 0, 1),
        _op(_RET_K, _RET_ALLOW),
        _op(_RET_K, _RET_ERRNO | errno.EAFNOSUPPORT),
    ]
    ops += [
        _op(_JEQ_K, clone, 0, 4),
        _op(_LD_W_ABS, _ARG0),
        _op(_JSET_K, _NEW_NAMESPACES, 0, 1),
        _op(_RET_K, _RET_ERRNO | errno.EPERM),
        _op(_RET_K, _RET_ALLOW),
    ]
    ops.append(_op(_RET_K, _RET_ALLOW))
    return b"".join(ops)


class _Program(ctypes.Structure):
    _fields_ = (("length", ctypes.c_ushort), ("filter", ctypes.c_char_p))


def install_filter() -> None:
    """Apply the filter to this process and what it executes (needs PR_SET_NO_NEW_PRIVS)."""
    code = filter_program()
    program = _Program(len(code) // 8, code)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0) != 0:
        number = ctypes.get_errno()
        raise SeccompError(number, f"seccomp filter refused: {errno.errorcode.get(number)}")
