"""SQLite databases that are files of the mission's workspace, opened beneath it.

SQLite opens by path, so the file's folder is opened beneath the workspace first (no link, no
`..` leaves it) and SQLite is handed the name inside that pinned folder (`/proc/self/fd/N/name`);
the name itself must be a regular file, not a link, before and after the open.
"""

from __future__ import annotations

import os
import posixpath
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

from rustchain.steps.support.os_refusals import os_refusals
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.workspace_files import (
    open_directory,
    workspace_relative,
    workspace_root,
)

_DENIED_ACTIONS = {sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH}


def _authorize(action: int, *_: object) -> int:
    # ATTACH would open any file of the executor's machine by its path; VACUUM INTO attaches too.
    return sqlite3.SQLITE_DENY if action in _DENIED_ACTIONS else sqlite3.SQLITE_OK


def _file_status(folder: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return None


def guard(connection: sqlite3.Connection, deadline: float) -> sqlite3.Connection:
    """No ATTACH, no extensions, no functions with side effects run by the file's own schema,
    and every statement interrupted once `deadline` passed."""
    # A workspace file may be crafted: its views and triggers may not call unsafe functions.
    connection.execute("PRAGMA trusted_schema = OFF")
    connection.set_authorizer(_authorize)
    connection.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    return connection


def memory_database(deadline: float) -> sqlite3.Connection:
    """A fresh in-memory database, discarded when closed."""
    return guard(sqlite3.connect(":memory:", isolation_level=None), deadline)


def _check_opened(
    connection: sqlite3.Connection,
    folder: int,
    name: str,
    before: os.stat_result | None,
    what: str,
) -> None:
    try:
        connection.execute("PRAGMA schema_version").fetchall()
    except sqlite3.DatabaseError as error:
        raise StepRunError(f"{what} is not a SQLite database: {error}") from None
    after = _file_status(folder, name)
    if after is None or not stat.S_ISREG(after.st_mode):
        raise StepRunError(f"{what} changed while it was opened")
    if before is not None and before.st_ino != after.st_ino:
        raise StepRunError(f"{what} changed while it was opened")


@contextmanager
def workspace_database(
    context: StepContext, written: str, parameter: str, *, create: bool, read_only: bool
) -> Iterator[sqlite3.Connection]:
    """A connection to the workspace's database file `written` (made if `create`)."""
    relative = workspace_relative(context, written, write=not read_only, parameter=parameter)
    folder_path, name = posixpath.split(relative)
    if name in ("", ".", ".."):
        raise StepRunError(f"{parameter} '{written}' names no file")
    deadline = time.monotonic() + context.timeout_seconds
    with workspace_root(context) as root, os_refusals(parameter, written):
        try:
            folder = open_directory(root, folder_path or ".", create=create)
        except (FileNotFoundError, NotADirectoryError):
            raise StepRunError(
                f"{parameter} '{written}': its folder is not in the workspace"
            ) from None
        try:
            before = _file_status(folder, name)
            if before is None and not create:
                raise StepRunError(f"{parameter} '{written}' is not a file in the workspace")
            if before is not None and not stat.S_ISREG(before.st_mode):
                raise StepRunError(f"{parameter} '{written}' is not a regular file (a link?)")
            mode = "ro" if read_only else ("rwc" if create else "rw")
            uri = f"file:{quote(f'/proc/self/fd/{folder}/{name}')}?mode={mode}"
            try:
                connection = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=5)
            except sqlite3.Error as error:
                raise StepRunError(f"{parameter} '{written}' cannot be opened: {error}") from None
            try:
                _check_opened(connection, folder, name, before, f"{parameter} '{written}'")
                yield guard(connection, deadline)
            finally:
                connection.close()
        finally:
            os.close(folder)
