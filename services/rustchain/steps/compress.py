"""The `compress` step: archive a workspace folder (tar, tar.gz or zip) into a workspace file.

Every member is read through a descriptor opened beneath the workspace; a symbolic link or any
special file in the folder is refused (RustChain followed links, so an archive could carry a file
from anywhere), files the policy denies (`.env`, `.git`, ...) are left out and listed, and the
bytes archived are bounded.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import stat
import tarfile
import zipfile
from contextlib import ExitStack, suppress
from typing import Annotated, Any, BinaryIO, Literal

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.checks import check_path
from rustchain.domain.policy.obligations import Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.os_refusals import os_refusals
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.workspace_files import (
    open_directory,
    open_regular,
    workspace_relative,
    workspace_root,
)
from rustchain.steps.support.workspace_walk import Entry, list_entries

MAX_BYTES = 1024 * 1024 * 1024
MAX_MEMBERS = 100_000


class CompressParameters(BaseModel):
    """RustChain's folder, archive and format; `max_bytes` (ours) bounds the bytes archived."""

    model_config = PARAMETERS
    source: Annotated[str, Field(min_length=1)]
    destination: Annotated[str, Field(min_length=1)]
    format: Literal["tar", "tar.gz", "zip"] = "tar"
    max_bytes: Annotated[int, Field(ge=1, le=MAX_BYTES)] = 256 * 1024 * 1024


def _members(
    context: StepContext, params: CompressParameters, destination: str
) -> tuple[list[Entry], list[str]]:
    """The entries to archive and the paths left out because the policy denies them."""
    entries = list_entries(context, params.source, recursive=True, parameter="source")
    if len(entries) > MAX_MEMBERS:
        raise StepRunError(f"source '{params.source}' holds more than {MAX_MEMBERS} entries")
    policy = context.enforced_policy
    kept: list[Entry] = []
    skipped: list[str] = []
    for entry in entries:
        if entry.path == destination or any(entry.path.startswith(f"{s}/") for s in skipped):
            continue  # the archive itself, or inside a folder left out
        if check_path(policy, entry.path) is not None:
            skipped.append(entry.path)
            continue
        if entry.kind == "link":
            raise StepRunError(
                f"source holds a symbolic link '{entry.path}'; compress archives no links"
            )
        if entry.kind == "other":
            raise StepRunError(f"source holds '{entry.path}', which is not a file or a folder")
        kept.append(entry)
    return kept, skipped


def _open_destination(
    context: StepContext, stack: ExitStack, relative: str, written: str
) -> tuple[int, int, str]:
    """The archive's folder (closed with the stack), the archive's descriptor, and its name."""
    parent, name = posixpath.split(relative)
    with workspace_root(context) as root, os_refusals("destination", written):
        folder = open_directory(root, parent or ".", create=True)
        stack.callback(os.close, folder)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(name, flags | os.O_NONBLOCK, 0o644, dir_fd=folder)
        except IsADirectoryError:
            raise StepRunError(f"destination '{written}' is a directory") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise StepRunError(f"destination '{written}' is not a regular file")
    return folder, fd, name


class _Archive:
    """One archive being written: members added from descriptors, bytes counted."""

    def __init__(self, handle: BinaryIO, kind: str, limit: int) -> None:
        self.limit, self.total = limit, 0
        self.tar: tarfile.TarFile | None = None
        self.zip: zipfile.ZipFile | None = None
        if kind == "zip":
            self.zip = zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED)
        # Closed by close() or abandon(): the archive outlives this call.
        elif kind == "tar.gz":
            self.tar = tarfile.open(fileobj=handle, mode="w:gz")  # noqa: SIM115
        else:
            self.tar = tarfile.open(fileobj=handle, mode="w")  # noqa: SIM115

    def add_folder(self, name: str) -> None:
        if self.tar is not None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            self.tar.addfile(info)

    def add_file(self, name: str, fd: int) -> None:
        status = os.fstat(fd)
        self.total += status.st_size
        if self.total > self.limit:
            raise StepRunError(f"the files to archive hold more than max_bytes ({self.limit})")
        with os.fdopen(os.dup(fd), "rb") as handle:
            if self.tar is not None:
                info = tarfile.TarInfo(name)
                info.size, info.mode = status.st_size, stat.S_IMODE(status.st_mode)
                info.mtime = int(status.st_mtime)
                self.tar.addfile(info, handle)
            elif self.zip is not None:
                with self.zip.open(name, "w", force_zip64=True) as member:
                    while chunk := handle.read(1024 * 1024):
                        member.write(chunk)

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()
        if self.zip is not None:
            self.zip.close()

    def abandon(self) -> None:
        """Stop writing after a failure (the caller removes the partial archive)."""
        for archive in (self.tar, self.zip):
            if archive is not None:
                with suppress(Exception):
                    archive.close()


def _write_archive(params: CompressParameters, context: StepContext) -> dict[str, Any]:
    source = workspace_relative(context, params.source, write=False, parameter="source")
    destination = workspace_relative(
        context, params.destination, write=True, parameter="destination"
    )
    if destination == ".":
        raise StepRunError(f"destination '{params.destination}' is the workspace itself")
    members, skipped = _members(context, params, destination)
    files = 0
    with ExitStack() as stack:
        folder, fd, file_name = _open_destination(context, stack, destination, params.destination)
        handle = stack.enter_context(os.fdopen(fd, "wb"))
        archive = _Archive(handle, params.format, params.max_bytes)
        try:
            with workspace_root(context) as root:
                for entry in members:
                    name = entry.path if source == "." else posixpath.relpath(entry.path, source)
                    if entry.kind == "directory":
                        archive.add_folder(name)
                        continue
                    with os_refusals("source", entry.path):
                        member = open_regular(root, entry.path)
                    try:
                        archive.add_file(name, member)
                    finally:
                        os.close(member)
                    files += 1
            archive.close()
        except BaseException:
            archive.abandon()
            with suppress(OSError):
                os.unlink(file_name, dir_fd=folder)  # no partial archive is left behind
            raise
    return {
        "source": params.source,
        "destination": params.destination,
        "format": params.format,
        "compressed": True,
        "files": files,
        "bytes": archive.total,
        "skipped": skipped,
    }


async def compress(params: CompressParameters, context: StepContext) -> dict[str, Any]:
    """RustChain's output (`source`, `destination`, `format`, `compressed`), plus the number of
    files and bytes archived and the paths the policy left out."""
    try:
        return await asyncio.to_thread(_write_archive, params, context)
    except (tarfile.TarError, zipfile.BadZipFile) as error:
        raise StepRunError(f"the archive could not be written: {error}") from None
    except OSError as error:
        said = error.strerror or str(error)
        raise StepRunError(f"the archive could not be written: {said}") from None


STEP_TYPE = StepDefinition(
    "compress", "Archive a workspace folder (tar, tar.gz, zip)", CompressParameters, run=compress
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The folder is read and the archive written inside the workspace, outside denied and
    read-only paths."""
    parameters = step.parameters
    return [
        *text_uses(Sink.PATH_READ, "source", parameters.get("source")),
        *text_uses(Sink.PATH_WRITE, "destination", parameters.get("destination")),
    ]


CONSTRAINTS = constraints
