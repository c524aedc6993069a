"""What the operating system refused, told as a StepRunError that names the parameter."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from rustchain.steps.support.errors import StepRunError, WorkspaceEscapeError

_SHOWN = 200
EXPLANATIONS = {  # why the OS refused, after the value's name
    errno.ELOOP: "is, or passes through, a symbolic link; file steps do not follow links",
    errno.ENOENT: "does not exist in the workspace",
    errno.ENOTDIR: "has a part that is not a directory",
    errno.EISDIR: "is a directory",
    errno.ENAMETOOLONG: "is too long: the file system refuses a name (or path) that long",
    errno.EACCES: "is not accessible (permission denied)",
    errno.EPERM: "is not accessible (operation not permitted)",
    errno.EEXIST: "exists",
    errno.ENOTEMPTY: "is a directory that is not empty",
    errno.ENOSPC: "cannot be written: no space left on the device",
    errno.EDQUOT: "cannot be written: the disk quota is exceeded",
    errno.EFBIG: "cannot be written: larger than the file size limit",
    errno.EROFS: "is on a read-only file system",
    errno.EMFILE: "cannot be opened: too many open files",
    errno.ENFILE: "cannot be opened: too many open files in the system",
    errno.EINVAL: "is refused by the file system (invalid argument)",
    errno.ENXIO: "is not a regular file (a device or a pipe without a reader)",
    errno.ETXTBSY: "is a program being run",
    errno.EBUSY: "is busy",
    errno.EIO: "cannot be read or written (input/output error)",
}


def shown(value: str) -> str:
    """A value as messages show it: capped, so an overlong name does not flood the error."""
    return value if len(value) <= _SHOWN else f"{value[:_SHOWN]}... ({len(value)} characters)"


def refusal(error: OSError, parameter: str, written: str) -> StepRunError:
    """The error a runner raises for an OS refusal of `written`, the value of `parameter`."""
    if error.errno == errno.EXDEV:
        return WorkspaceEscapeError(
            f"{parameter} '{shown(written)}' leaves the mission's workspace; "
            "file steps may only use paths inside it"
        )
    if error.errno == errno.ELOOP:
        # A link could lead anywhere, so it is refused as an escape would be.
        return WorkspaceEscapeError(f"{parameter} '{shown(written)}' {EXPLANATIONS[errno.ELOOP]}")
    explanation = EXPLANATIONS.get(error.errno or 0)
    if explanation is None:
        explanation = f"failed: {(error.strerror or 'error').lower()}"
    return StepRunError(f"{parameter} '{shown(written)}' {explanation}")


@contextmanager
def os_refusals(parameter: str, written: str) -> Iterator[None]:
    """Turn what the OS refuses inside the block into a StepRunError naming the parameter."""
    try:
        yield
    except OSError as error:
        raise refusal(error, parameter, written) from None
    except ValueError as error:
        # The only ValueError os functions raise for a str path: a NUL byte in it.
        raise StepRunError(f"{parameter} {shown(written)!r} is not a valid path: {error}") from None
