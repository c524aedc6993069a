"""A workspace folder as one deterministic tar, and back: what a workspace snapshot is made of.

The same tree always gives the same bytes (entries sorted, owners and directory times zeroed,
file times in whole seconds, PAX format), so the archive's SHA-256 names the tree: a snapshot is
skipped when it would be the one already kept, and a replica tells whether its folder holds the
recorded snapshot by archiving it again. Each entry passes tarfile's `data` filter when it is
archived, so what is saved is exactly what a restore accepts; a restore checks the hash first,
extracts with the same filter into a fresh folder beside the workspace, then swaps it in.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import stat
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rustchain.domain.plans.artifacts import sha256_of

TAR_MEDIA_TYPE = "application/x-tar"
RACY_NANOSECONDS = 100_000_000
"""A file changed this close to a scan may change again within the file system's clock tick
without its times moving (git's "racy" entries): such a scan's fingerprint is not trusted."""


class WorkspaceArchiveError(RuntimeError):
    """An archive that is not the recorded one, or holds what no workspace may (links out, ..)."""


class WorkspaceTooLargeError(WorkspaceArchiveError):
    """A workspace whose files are over the snapshot limit."""


@dataclass(frozen=True)
class TreeScan:
    """A workspace's entries as `lstat` sees them, and a fingerprint of that listing."""

    entries: tuple[tuple[str, os.stat_result], ...]
    fingerprint: str
    file_bytes: int
    # True when an entry changed so recently that its times cannot vouch for its content.
    racy: bool


@dataclass(frozen=True)
class WorkspaceArchive:
    """A workspace as tar bytes, with its SHA-256 and what it holds."""

    data: bytes
    sha256: str
    files: int
    omitted: int


def _walk(root: Path, relative: str = "") -> Iterator[tuple[str, os.stat_result]]:
    """Every entry beneath `root`, parents first, names sorted; links are never followed."""
    folder = root / relative if relative else root
    try:
        with os.scandir(folder) as listing:
            names = sorted(entry.name for entry in listing)
    except FileNotFoundError:
        return  # removed while listed (a running step's temporary folder): not in the tree
    for name in names:
        path = f"{relative}/{name}" if relative else name
        try:
            info = os.lstat(root / path)
        except FileNotFoundError:
            continue
        yield path, info
        if stat.S_ISDIR(info.st_mode):
            yield from _walk(root, path)


def scan_tree(root: Path) -> TreeScan:
    """The workspace's listing (empty when the folder does not exist)."""
    began = time.time_ns()
    entries = tuple(_walk(root)) if root.is_dir() else ()
    digest = hashlib.sha256()
    racy = False
    for path, info in entries:
        digest.update(
            f"{path}\0{info.st_mode}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ctime_ns}"
            f"\0{info.st_ino}\n".encode("utf-8", "surrogateescape")
        )
        racy = racy or max(info.st_mtime_ns, info.st_ctime_ns) >= began - RACY_NANOSECONDS
    file_bytes = sum(info.st_size for _, info in entries if stat.S_ISREG(info.st_mode))
    return TreeScan(entries, digest.hexdigest(), file_bytes, racy)


def _member(root: Path, path: str, info: os.stat_result) -> tuple[tarfile.TarInfo, bytes] | None:
    """The tar entry of one workspace entry with its content, or None when none may hold it."""
    member = tarfile.TarInfo(path)
    member.mode = stat.S_IMODE(info.st_mode)
    content = b""
    if stat.S_ISDIR(info.st_mode):
        member.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(info.st_mode):
        member.type = tarfile.SYMTYPE
        member.linkname = os.readlink(root / path)
    elif stat.S_ISREG(info.st_mode):
        # Read whole, then sized by what was read: a file a running step is writing is caught as
        # it is, and the header never promises more bytes than follow it.
        descriptor = os.open(root / path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(descriptor, "rb") as file:
            content = file.read()
        member.size = len(content)
        member.mtime = int(info.st_mtime)
    else:
        return None
    try:
        # What a restore would refuse (a link out, a device) is left out now, not found later.
        filtered = tarfile.data_filter(member, str(root))
    except tarfile.FilterError:
        return None
    # The filter leaves owners (and a link's mode) unset, meaning "the extractor's"; an archive
    # records none.
    mode = 0o777 if filtered.mode is None else filtered.mode
    return filtered.replace(mode=mode, uid=0, gid=0, uname="", gname="", deep=False), content


def archive_tree(root: Path, scan: TreeScan, max_bytes: int) -> WorkspaceArchive:
    """The scanned workspace as one deterministic tar; WorkspaceTooLargeError over `max_bytes`."""
    if scan.file_bytes > max_bytes:
        raise WorkspaceTooLargeError(_too_large(scan.file_bytes, max_bytes))
    buffer = io.BytesIO()
    files = omitted = read = 0
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, info in scan.entries:
            try:
                made = _member(root, path, info)
            except FileNotFoundError:
                continue  # removed since the scan: it is not part of the tree any more
            if made is None:
                omitted += 1
                continue
            member, content = made
            read += len(content)
            if read > max_bytes:
                raise WorkspaceTooLargeError(_too_large(read, max_bytes))
            tar.addfile(member, io.BytesIO(content) if member.isreg() else None)
            files += member.isreg()
    data = buffer.getvalue()
    return WorkspaceArchive(data, sha256_of(data), files, omitted)


def _too_large(size: int, max_bytes: int) -> str:
    return (
        f"its files are {size:,} bytes, over the snapshot limit of {max_bytes:,} bytes"
        " (RUSTCHAIN_WORKSPACE_SNAPSHOT_MAX_BYTES)"
    )


def restore_tree(data: bytes, sha256: str, destination: Path) -> None:
    """Make `destination` hold exactly the archive's tree, or raise WorkspaceArchiveError.

    Nothing is extracted unless the bytes hash to `sha256`; extraction uses tarfile's `data`
    filter (no absolute paths, no `..`, no links out, no devices) into a fresh folder beside the
    destination, which replaces the destination only once every entry is in place.
    """
    digest = sha256_of(data)
    if digest != sha256:
        raise WorkspaceArchiveError(
            f"the workspace archive hashes to {digest}, not to the recorded {sha256}"
        )
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = _beside(destination, "restoring")
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            tar.errorlevel = 2
            tar.extractall(staging, filter=_workspace_filter)
    except (tarfile.TarError, OSError) as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise WorkspaceArchiveError(
            f"the workspace archive {sha256} was refused: {error}"
        ) from None
    _swap_in(staging, destination)


def _workspace_filter(member: tarfile.TarInfo, destination: str) -> tarfile.TarInfo | None:
    """tarfile's `data` filter, with an absolute name refused rather than made relative: no
    archive of ours holds one, so one that does was not made by a snapshot."""
    if member.name.startswith("/"):
        raise tarfile.AbsolutePathError(member)
    return tarfile.data_filter(member, destination)


def _beside(destination: Path, purpose: str) -> Path:
    """A fresh private folder in the destination's parent (a rename stays on one file system)."""
    prefix = f".{destination.name}.{purpose}-"
    return Path(tempfile.mkdtemp(prefix=prefix, dir=destination.parent))


def _swap_in(staging: Path, destination: Path) -> None:
    """Replace `destination` by `staging`: the old folder is moved aside, then removed."""
    old: Path | None = None
    if destination.exists() or destination.is_symlink():
        old = _beside(destination, "replaced")
        destination.rename(old / "workspace")
    staging.rename(destination)
    if old is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(old)
