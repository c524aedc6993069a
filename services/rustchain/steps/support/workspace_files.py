"""File operations of steps, on descriptors beneath the mission's workspace: a path is checked
against the policy, then opened at the moment of use so that no link and no `..` leaves it."""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

from rustchain.domain.policy.checks import check_path
from rustchain.steps.support.beneath import open_beneath
from rustchain.steps.support.errors import StepRunError, WorkspaceEscapeError
from rustchain.steps.support.os_refusals import EXPLANATIONS, os_refusals, shown

if TYPE_CHECKING:
    from rustchain.steps.support.runtime import StepContext

_CHUNK = 1024 * 1024
_PATH_MAX = 4096
# O_NONBLOCK: opening a FIFO planted in the workspace must not hang the executor; regular files
# ignore it, and every open is followed by a check that the file is a regular one.
_READ = os.O_RDONLY | os.O_NONBLOCK
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY


def workspace_relative(context: StepContext, written: str, *, write: bool, parameter: str) -> str:
    """The policy's check of `written`, then its normal form relative to the workspace (`.` for
    the workspace itself); a NUL byte, an absolute path or a `..` that leaves are refused."""
    context.check(check_path, written, write=write)
    if "\x00" in written:
        raise StepRunError(f"{parameter} {shown(written)!r} holds a NUL byte, which no path may")
    try:
        encoded = os.fsencode(written)
    except UnicodeEncodeError:
        raise StepRunError(f"{parameter} {shown(written)!r} is not a valid file name") from None
    if len(encoded) >= _PATH_MAX:
        # openat2 refuses such a path, a walk would not: both mechanisms refuse it here.
        raise StepRunError(f"{parameter} '{shown(written)}' {EXPLANATIONS[errno.ENAMETOOLONG]}")
    normal = posixpath.normpath(written)
    if posixpath.isabs(normal) or normal == ".." or normal.startswith("../"):
        raise WorkspaceEscapeError(
            f"{parameter} '{shown(written)}' leaves the mission's workspace "
            f"({context.workspace}); file steps may only use paths inside it"
        )
    return normal


@contextmanager
def workspace_root(context: StepContext) -> Iterator[int]:
    """A descriptor of the workspace folder, the anchor of every open beneath it."""
    try:
        fd = os.open(context.workspace, _DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        raise StepRunError(
            f"the mission's workspace {context.workspace} cannot be opened: {error.strerror}"
        ) from None
    try:
        yield fd
    finally:
        os.close(fd)


@contextmanager
def _descriptor(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def _regular(fd: int) -> os.stat_result:
    status = os.fstat(fd)
    if stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
    if not stat.S_ISREG(status.st_mode):
        raise OSError(errno.ENXIO, os.strerror(errno.ENXIO))
    return status


def _read_all(fd: int, limit: int | None) -> bytes:
    with os.fdopen(os.dup(fd), "rb") as handle:
        return handle.read() if limit is None else handle.read(limit)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[:_CHUNK]) :]


def copy_descriptor(source: int, target: int) -> None:
    """Copy a regular file's bytes, from its start, to another descriptor."""
    offset = 0
    while chunk := os.pread(source, _CHUNK, offset):
        _write_all(target, chunk)
        offset += len(chunk)


def open_regular(root: int, relative: str, flags: int = _READ) -> int:
    """A descriptor of a regular file beneath `root`; a folder raises IsADirectoryError, a pipe
    or a device ENXIO."""
    fd = open_beneath(root, relative, flags)
    try:
        _regular(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(
    context: StepContext, written: str, max_bytes: int | None, parameter: str = "path"
) -> bytes:
    """The bytes of a workspace file a step reads, checked against the policy and a size cap."""
    relative = workspace_relative(context, written, write=False, parameter=parameter)
    with workspace_root(context) as root, os_refusals(parameter, written):
        try:
            fd = open_regular(root, relative)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise StepRunError(f"{parameter} '{written}' is not a file in the workspace") from None
        with _descriptor(fd):
            data = _read_all(fd, None if max_bytes is None else max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise StepRunError(f"{parameter} '{written}' is larger than {max_bytes} bytes")
    return data


def open_directory(root: int, relative: str, *, create: bool) -> int:
    """A descriptor of a folder beneath `root`, made (with its parents) if `create`."""
    try:
        return open_beneath(root, relative, _DIRECTORY)
    except FileNotFoundError:
        if not create:
            raise
    current = os.dup(root)
    try:
        for name in relative.split("/"):
            # Made by another step meanwhile, or already there: the open below decides.
            with suppress(FileExistsError):
                os.mkdir(name, dir_fd=current)
            folder = open_beneath(current, name, _DIRECTORY)
            os.close(current)
            current = folder
    except BaseException:
        os.close(current)
        raise
    return current


def open_for_writing(
    context: StepContext, written: str, *, overwrite: bool, parameter: str = "path"
) -> tuple[str, int]:
    """A workspace file opened for writing, empty (its folders made): its path relative to the
    workspace and a descriptor the caller closes."""
    relative = workspace_relative(context, written, write=True, parameter=parameter)
    if relative == ".":
        raise StepRunError(f"'{written}' is a directory")
    parent, name = posixpath.split(relative)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    with (
        workspace_root(context) as root,
        os_refusals(parameter, written),
        _descriptor(open_directory(root, parent or ".", create=True)) as folder,
    ):
        try:
            fd = os.open(name, flags | (0 if overwrite else os.O_EXCL), 0o666, dir_fd=folder)
        except FileExistsError:
            raise StepRunError(f"'{written}' exists and overwrite is false") from None
        except IsADirectoryError:
            raise StepRunError(f"'{written}' is a directory") from None
        try:
            _regular(fd)
            os.ftruncate(fd, 0)
        except BaseException:
            os.close(fd)
            raise
    return relative, fd


def write_file(
    context: StepContext, written: str, data: bytes, *, overwrite: bool, mode: int | None
) -> str:
    """Write a workspace file (making its folders); its path relative to the workspace."""
    relative, fd = open_for_writing(context, written, overwrite=overwrite)
    with os_refusals("path", written), _descriptor(fd):
        _write_all(fd, data)
        if mode is not None:
            os.fchmod(fd, mode)
    return relative


def rewrite_text(context: StepContext, written: str, change: Callable[[str], str]) -> str:
    """Replace a workspace text file's content by `change(content)`; its relative path."""
    relative = workspace_relative(context, written, write=True, parameter="path")
    with workspace_root(context) as root, os_refusals("path", written):
        try:
            fd = open_regular(root, relative, os.O_RDWR | os.O_NONBLOCK)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise StepRunError(f"'{written}' is not a file in the workspace") from None
        with _descriptor(fd):
            try:
                text = _read_all(fd, None).decode("utf-8")
            except UnicodeDecodeError as error:
                raise StepRunError(f"'{written}' is not UTF-8 text: {error.reason}") from None
            data = change(text).encode("utf-8")
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            _write_all(fd, data)
    return relative


def delete_file(context: StepContext, written: str, *, missing_ok: bool) -> tuple[str, bool]:
    """Delete a workspace file (a link is removed, never followed): its path, and whether it
    was there."""
    relative = workspace_relative(context, written, write=True, parameter="path")
    if relative == ".":
        raise StepRunError(f"'{written}' is a directory; delete_file deletes files")
    parent, name = posixpath.split(relative)

    def missing() -> tuple[str, bool]:
        if missing_ok:
            return relative, False
        raise StepRunError(f"'{written}' does not exist")

    with workspace_root(context) as root, os_refusals("path", written):
        try:
            folder = open_directory(root, parent or ".", create=False)
        except (FileNotFoundError, NotADirectoryError):
            return missing()
        with _descriptor(folder):
            try:
                status = os.stat(name, dir_fd=folder, follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                return missing()
            if stat.S_ISDIR(status.st_mode):
                raise StepRunError(f"'{written}' is a directory; delete_file deletes files")
            os.unlink(name, dir_fd=folder)
    return relative, True


def source_text(context: StepContext, content: str | None, path: str | None, max_chars: int) -> str:
    """The text a parse step is given: inline `content`, or a workspace file's (both capped)."""
    if path is not None:
        text = read_bytes(context, path, max_chars).decode("utf-8", errors="replace")
    else:
        text = content or ""
    if len(text) > max_chars:
        raise StepRunError(f"the text to parse is larger than {max_chars} characters")
    return text
