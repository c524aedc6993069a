"""Open a path beneath a directory so that no symbolic link and no `..` leaves it, at the moment
of use: openat2(2) with RESOLVE_BENEATH, or a walk of O_NOFOLLOW opens where the kernel lacks it."""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import platform
import stat
from collections.abc import Callable
from typing import cast

# openat2 is number 437 on every architecture with the unified syscall table (Linux >= 5.6);
# elsewhere the number may name another call, so only these machines try it.
_SYS_OPENAT2 = 437
_UNIFIED_TABLE = {"x86_64", "aarch64", "arm64", "i686", "i386", "armv7l", "riscv64", "ppc64le"}
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08
# No link at all, not only none that leads out: the policy judges a path by its text, and a link
# inside the workspace (`notes -> .env`) would make the text name one file and the open reach
# another. The walk below refuses exactly the same paths, so both mechanisms agree.
RESOLVE = _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS
_O_PATH = getattr(os, "O_PATH", os.O_RDONLY)
_WALK = _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class _OpenHow(ctypes.Structure):
    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    )


_Syscall = Callable[[int, int, bytes, object, int], int]


@functools.cache
def _syscall() -> _Syscall | None:
    if platform.system() != "Linux" or platform.machine() not in _UNIFIED_TABLE:
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_long
    function.argtypes = (
        ctypes.c_long,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_void_p,
        ctypes.c_size_t,
    )
    return cast(_Syscall, function)


def _openat2(function: _Syscall, dir_fd: int, path: str, flags: int, mode: int) -> int:
    how = _OpenHow(flags, mode if flags & os.O_CREAT else 0, RESOLVE)
    encoded = os.fsencode(path)
    fd = int(function(_SYS_OPENAT2, dir_fd, encoded, ctypes.byref(how), ctypes.sizeof(how)))
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), path)
    return fd


@functools.cache
def mechanism() -> str:
    """Which mechanism opens paths in this process: `openat2` or `walk` (the kernel lacks it,
    or a seccomp filter refuses it)."""
    function = _syscall()
    if function is None:
        return "walk"
    root = os.open("/", _WALK)
    try:
        os.close(_openat2(function, root, ".", _WALK, 0))
    except OSError as error:
        if error.errno in (errno.ENOSYS, errno.EPERM, errno.EINVAL, errno.E2BIG):
            return "walk"
        raise
    finally:
        os.close(root)
    return "openat2"


def open_beneath(dir_fd: int, relative: str, flags: int, mode: int = 0o666) -> int:
    """A descriptor of `relative` (normalised, no `..`) beneath the folder `dir_fd`, opened with
    `flags`; a symbolic link anywhere on the way is refused with ELOOP, an escape with EXDEV."""
    if "\x00" in relative:
        raise ValueError("embedded null byte")
    flags |= os.O_CLOEXEC
    if mechanism() == "openat2":
        function = _syscall()
        assert function is not None  # mechanism() said so
        # RESOLVE_NO_SYMLINKS refuses a trailing link with ELOOP; O_NOFOLLOW would turn that into
        # ENOTDIR for a folder.
        return _openat2(function, dir_fd, relative, flags & ~os.O_NOFOLLOW, mode)
    return _walk(dir_fd, relative, flags | os.O_NOFOLLOW, mode)


def _walk(dir_fd: int, relative: str, flags: int, mode: int) -> int:
    names = [name for name in relative.split("/") if name not in ("", ".")]
    if ".." in names:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), relative)
    if not names:
        return os.open(".", flags, mode, dir_fd=dir_fd)
    current, owned = dir_fd, -1
    try:
        for name in names[:-1]:
            try:
                opened = os.open(name, _WALK, dir_fd=current)
            except NotADirectoryError:
                _refuse_link(current, name, relative)
                raise
            if owned >= 0:
                os.close(owned)
            current = owned = opened
        try:
            return os.open(names[-1], flags, mode, dir_fd=current)
        except NotADirectoryError:
            _refuse_link(current, names[-1], relative)
            raise
    finally:
        if owned >= 0:
            os.close(owned)


def _refuse_link(dir_fd: int, name: str, relative: str) -> None:
    """O_NOFOLLOW|O_DIRECTORY on a link says ENOTDIR; say ELOOP as openat2 does."""
    try:
        is_link = stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return
    if is_link:
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), relative)
