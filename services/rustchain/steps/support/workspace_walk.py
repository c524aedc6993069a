"""Listing a workspace folder on descriptors: a symbolic link is listed as a link, never
followed, so neither its target's contents nor its size can be learnt through a listing."""

from __future__ import annotations

import fnmatch
import functools
import os
import posixpath
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rustchain.steps.support.beneath import open_beneath
from rustchain.steps.support.errors import StepRunError
from rustchain.steps.support.os_refusals import os_refusals, shown
from rustchain.steps.support.workspace_files import workspace_relative, workspace_root

if TYPE_CHECKING:
    from rustchain.steps.support.runtime import StepContext

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY


@dataclass(frozen=True)
class Entry:
    """One entry of a listing: its path relative to the workspace, kind and size (files only)."""

    path: str
    kind: str  # file, directory, link (never followed) or other (pipe, socket, device)
    size: int

    @property
    def parts(self) -> tuple[str, ...]:
        """The path's names, the order listings are sorted in."""
        return tuple(self.path.split("/"))

    @property
    def name(self) -> str:
        """The entry's own name."""
        return posixpath.basename(self.path)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "link"
    return "file" if stat.S_ISREG(mode) else "other"


def _scan(folder: int, prefix: str, recursive: bool, found: list[Entry]) -> None:
    with os.scandir(folder) as entries:
        listed = list(entries)
    for entry in listed:
        path = f"{prefix}/{entry.name}" if prefix else entry.name
        try:
            mode = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # removed meanwhile
        kind = _kind(mode.st_mode)
        found.append(Entry(path, kind, mode.st_size if kind == "file" else 0))
        if recursive and kind == "directory":
            try:
                child = open_beneath(folder, entry.name, _DIRECTORY)
            except OSError:
                continue  # unreadable, or swapped for a link since the scan: not descended
            try:
                _scan(child, path, recursive, found)
            finally:
                os.close(child)


def list_entries(
    context: StepContext, written: str, *, recursive: bool, parameter: str = "path"
) -> list[Entry]:
    """The entries of a workspace folder (and, if `recursive`, of its folders), sorted."""
    relative = workspace_relative(context, written, write=False, parameter=parameter)
    found: list[Entry] = []
    with workspace_root(context) as root, os_refusals(parameter, written):
        try:
            folder = open_beneath(root, relative, _DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            raise StepRunError(f"'{written}' is not a directory in the workspace") from None
        try:
            _scan(folder, "" if relative == "." else relative, recursive, found)
        except RecursionError:
            raise StepRunError(f"{parameter} '{written}' holds folders nested too deeply") from None
        finally:
            os.close(folder)
    return sorted(found, key=lambda entry: entry.parts)


def glob_parts(pattern: str) -> list[str]:
    """A relative glob's names; an absolute pattern is refused (a search stays where it is)."""
    if "\x00" in pattern or posixpath.isabs(pattern):
        raise StepRunError(f"pattern '{shown(pattern)}' must be a relative glob such as '*.py'")
    return [part for part in pattern.split("/") if part not in ("", ".")]


def matches(pattern: Sequence[str], parts: Sequence[str]) -> bool:
    """Whether names match a glob's names (`**` for any number of folders), as pathlib does;
    memoised, so a pattern of many `**` stays linear in the names, not exponential."""

    @functools.cache
    def from_(index: int, name: int) -> bool:
        if index == len(pattern):
            return name == len(parts)
        if pattern[index] == "**":
            return from_(index + 1, name) or (name < len(parts) and from_(index, name + 1))
        return (
            name < len(parts)
            and fnmatch.fnmatchcase(parts[name], pattern[index])
            and from_(index + 1, name + 1)
        )

    return from_(0, 0)
