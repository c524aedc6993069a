"""One process at a time makes tables in a PostgreSQL database.

PostgreSQL's `CREATE ... IF NOT EXISTS` is not safe against a concurrent one: two processes that
open their stores on a fresh database at once (several executor pods, `rustchain up` starting its
services together) can fail with "tuple concurrently updated" or a duplicate key on the catalog.
A session advisory lock, on a connection of its own, makes the openings take turns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
from eventsourcing.persistence import OperationalError

SCHEMA_LOCK_KEY = 0x52_43_53_43_48_45_4D_41
"""The advisory lock's key ("RCSCHEMA"): the same for every store of a database."""
CONNECT_TIMEOUT_SECONDS = 5
"""As the stores' own connections (POSTGRES_CONNECT_TIMEOUT)."""


@contextlib.contextmanager
def schema_lock(database_url: str) -> Iterator[None]:
    """Hold the database's schema lock while the block makes tables.

    An unreachable database raises eventsourcing's OperationalError, as the store itself would
    (callers report it as the store being unreachable)."""
    try:
        connection = psycopg.connect(
            database_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
        )
        connection.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
    except psycopg.Error as error:
        # libpq's reasons span lines (a hint after a tab); the message is one line.
        raise OperationalError(" ".join(str(error).split())) from None
    with connection:
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))
