"""SQLite connections that can load extensions, for sqlite-vec's vector search.

Python's own sqlite3 module is often built without `enable_load_extension` (this machine's is),
which would leave the memory store's vectors on the exact scan in Python. The sqlean.py wheel is
the same DB-API module built with extension loading on and FTS5 in, so the memory store opens its
database through it and sqlite-vec loads everywhere the wheel installs.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import cast

import sqlean  # type: ignore[import-untyped]  # ships no type information

SQLITE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, sqlean.Error)
"""What either build of the module raises for a database error."""
LoadableSqliteError: type[Exception] = sqlean.Error


def connect_loadable(path: Path | str) -> sqlite3.Connection:
    """An autocommit connection usable from several threads (the caller holds a lock) that can
    load extensions; typed as the standard module's, whose API it has."""
    connection = sqlean.connect(str(path), check_same_thread=False, isolation_level=None)
    return cast(sqlite3.Connection, connection)
