"""Copying and moving a workspace file on descriptors beneath the workspace (no link followed)."""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from typing import TYPE_CHECKING

from rustchain.steps.support.beneath import open_beneath
from rustchain.steps.support.errors import StepRunError
from rustchain.steps.support.os_refusals import os_refusals
from rustchain.steps.support.workspace_files import (
    copy_descriptor,
    open_directory,
    open_regular,
    workspace_relative,
    workspace_root,
)

if TYPE_CHECKING:
    from rustchain.steps.support.runtime import StepContext

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY


def _is_directory(root: int, relative: str) -> bool:
    try:
        os.close(open_beneath(root, relative, _DIRECTORY))
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return False
        raise
    return True


def _exists(folder: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def relocate(
    context: StepContext,
    source_written: str,
    destination_written: str,
    *,
    overwrite: bool,
    move: bool,
) -> dict[str, object]:
    """Copy or move a workspace file (into a folder keeps its name); refuse to replace one
    unless `overwrite`."""
    source = workspace_relative(context, source_written, write=move, parameter="source")
    destination = workspace_relative(
        context, destination_written, write=True, parameter="destination"
    )
    with workspace_root(context) as root:
        with os_refusals("source", source_written):
            try:
                source_fd = open_regular(root, source)
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise StepRunError(f"'{source_written}' is not a file in the workspace") from None
        try:
            with os_refusals("destination", destination_written):
                if _is_directory(root, destination):
                    name = posixpath.basename(source)
                    destination = workspace_relative(
                        context,
                        f"{destination_written}/{name}",
                        write=True,
                        parameter="destination",
                    )
                parent, name = posixpath.split(destination)
                folder = open_directory(root, parent or ".", create=True)
            try:
                with os_refusals("destination", destination_written):
                    if _exists(folder, name) and not overwrite:
                        raise StepRunError(f"'{destination_written}' exists and overwrite is false")
                    if move:
                        source_parent, source_name = posixpath.split(source)
                        with os_refusals("source", source_written):
                            source_folder = open_directory(root, source_parent or ".", create=False)
                        try:
                            _rename(source_folder, source_name, source_fd, folder, name)
                        finally:
                            os.close(source_folder)
                    else:
                        _copy(source_fd, folder, name, overwrite=overwrite)
            finally:
                os.close(folder)
        finally:
            os.close(source_fd)
    return {"source": source_written, "destination": destination}


def _rename(source_folder: int, source_name: str, source_fd: int, folder: int, name: str) -> None:
    """Rename the very file opened (a swap since the open is refused, not followed)."""
    opened = os.fstat(source_fd)
    now = os.stat(source_name, dir_fd=source_folder, follow_symlinks=False)
    if (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino):
        raise StepRunError("the source was replaced while it was being moved; try again")
    os.rename(source_name, name, src_dir_fd=source_folder, dst_dir_fd=folder)


def _copy(source_fd: int, folder: int, name: str, *, overwrite: bool) -> None:
    status = os.fstat(source_fd)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        target = os.open(name, flags | (0 if overwrite else os.O_EXCL), 0o600, dir_fd=folder)
    except FileExistsError:
        raise StepRunError(f"'{name}' exists and overwrite is false") from None
    try:
        copied = os.fstat(target)
        if not stat.S_ISREG(copied.st_mode):
            raise OSError(errno.ENXIO, os.strerror(errno.ENXIO))
        if (copied.st_dev, copied.st_ino) == (status.st_dev, status.st_ino):
            raise StepRunError("the source and the destination are the same file")
        os.ftruncate(target, 0)
        copy_descriptor(source_fd, target)
        # What shutil.copy2 kept: permission bits and times.
        os.fchmod(target, stat.S_IMODE(status.st_mode))
        os.utime(target, ns=(status.st_atime_ns, status.st_mtime_ns))
    finally:
        os.close(target)
