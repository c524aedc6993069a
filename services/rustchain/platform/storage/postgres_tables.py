"""The PostgreSQL database of the stores that keep their own tables beside the event stores
(memory's documents, the trainer's trajectories): a small connection pool, tables named
`<name>_<what>` so that two deployments (or two tests) on one database never share one, and the
database's failures as one error that names it (never its password)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from rustchain.platform.storage.event_store import DATABASE_URL_VARIABLE

POOL_SIZE = 4
"""Connections per store and process: the gRPC servers run store calls on worker threads."""
CONNECT_TIMEOUT_SECONDS = 5.0
_PROGRAM_LIMIT_EXCEEDED = "54"
"""The SQLSTATE class of inputs beyond a server limit (54000, 54001 statement too complex, ...)."""
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class PostgresUnavailableError(RuntimeError):
    """The database cannot be reached, or it failed a call; nothing was written."""


def postgres_location(url: str) -> str:
    """`PostgreSQL at HOST:PORT/DATABASE`, for messages (never the password)."""
    parts = urlsplit(url)
    return f"PostgreSQL at {parts.hostname}:{parts.port or 5432}{parts.path}"


def check_table_prefix(name: str) -> str:
    """A prefix fit to start a table name; ValueError otherwise."""
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"invalid table prefix {name!r}: expected 1-40 characters of a-z, 0-9 or '_',"
            " starting with a letter"
        )
    return name


class PostgresTables:
    """A pool of connections to one database, for the tables that start with `prefix`."""

    def __init__(self, url: str, prefix: str, schema: str) -> None:
        scheme = urlsplit(url).scheme
        if scheme not in {"postgres", "postgresql"}:
            raise PostgresUnavailableError(
                f"{DATABASE_URL_VARIABLE} must be a postgresql:// URL, not {scheme or url!r}"
            )
        self.prefix = check_table_prefix(prefix)
        self.location = postgres_location(url)
        try:
            # One connection first, for its reason when it fails (the pool only times out).
            psycopg.connect(url, connect_timeout=int(CONNECT_TIMEOUT_SECONDS)).close()
        except psycopg.Error as error:
            reason = " ".join(str(error).split())
            raise PostgresUnavailableError(f"{self.location} is unreachable: {reason}") from None
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_SIZE,
            open=False,
            kwargs={
                "autocommit": True,
                "connect_timeout": int(CONNECT_TIMEOUT_SECONDS),
                # Names the store's connections in pg_stat_activity.
                "application_name": f"rustchain {prefix}",
            },
            name=f"rustchain-{prefix}",
        )
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
        except PoolTimeout as error:
            self._pool.close()
            raise PostgresUnavailableError(f"{self.location} is unreachable ({error})") from None
        try:
            self._create(schema.format(prefix=prefix))
        except BaseException:
            self._pool.close()
            raise

    def _create(self, schema: str) -> None:
        with self.transaction() as cursor:
            # Replicas starting together would race on CREATE ... IF NOT EXISTS (a unique
            # violation in the catalogue): one creates while the others wait for its commit.
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.prefix,))
            cursor.execute(schema)

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        """A cursor in one transaction: committed when the block ends, rolled back if it raises;
        a lost or refused connection is PostgresUnavailableError."""
        with (
            self._connection() as connection,
            connection.transaction(),
            connection.cursor() as cursor,
        ):
            yield cursor

    @contextmanager
    def statement(self) -> Iterator[psycopg.Cursor[Any]]:
        """A cursor whose every statement commits on its own: for one-statement calls, which
        BEGIN and COMMIT would cost two more round trips."""
        with self._connection() as connection, connection.cursor() as cursor:
            yield cursor

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        # No check on checkout (it costs a round trip per call): a connection the server dropped
        # (a restart, a failover) fails its one call as unavailable, and the pool replaces it.
        try:
            with self._pool.connection() as connection:
                yield connection
        except psycopg.OperationalError as error:
            if (error.sqlstate or "").startswith(_PROGRAM_LIMIT_EXCEEDED):
                # An input beyond one of the server's limits (a tsvector over 1 MB): the
                # request's fault, not an outage, though psycopg files it as operational.
                raise ValueError(f"too large for {self.location}: {error}") from error
            raise PostgresUnavailableError(f"{self.location}: {error}") from error
        except PoolTimeout as error:
            raise PostgresUnavailableError(f"{self.location}: {error}") from error

    def close(self) -> None:
        """Close every connection of the pool."""
        self._pool.close()
