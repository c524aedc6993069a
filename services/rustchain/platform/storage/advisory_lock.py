"""A PostgreSQL session advisory lock: held by one process at a time, freed when its session ends.

The relays of one store elect their active one with it (platform/nats/relay_election.py). The
lock lives as long as the connection that took it: a holder that dies (SIGKILL, node lost) frees
it the moment PostgreSQL notices the session is gone, with no lease to expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

_log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0
"""How long a query on the lock's connection may take before the lock counts as lost."""
# The server drops a silent session (a partitioned holder) after about idle + interval x count
# seconds, freeing the lock; by then the holder's own check has long timed out and it has stopped.
_SERVER_KEEPALIVES = {"tcp_keepalives_idle": 5, "tcp_keepalives_interval": 2}
_CLIENT_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}


def advisory_key(purpose: str, name: str) -> int:
    """The signed 64-bit lock key of a purpose and a name (one lock per store and purpose)."""
    digest = hashlib.sha256(f"rustchain {purpose} {name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresAdvisoryLock:
    """`pg_try_advisory_lock` on a connection of its own, which holds it for as long as it lives."""

    def __init__(self, database_url: str, key: int) -> None:
        self._url = database_url
        self.key = key
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._held = False

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        if self._connection is None or self._connection.closed:
            conninfo = make_conninfo(self._url, connect_timeout=5, **_CLIENT_KEEPALIVES)
            self._connection = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
            for setting, seconds in _SERVER_KEEPALIVES.items():
                await self._connection.execute(f"SET {setting} = {seconds}")
        return self._connection

    async def try_acquire(self) -> bool:
        """Take the lock if no other session holds it; False (never an error) when unreachable."""
        if self._held:
            return await self.held()
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS * 3):
                connection = await self._connect()
                cursor = await connection.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
                row = await cursor.fetchone()
        except (psycopg.Error, OSError, TimeoutError) as error:
            _log.warning("advisory lock %d: PostgreSQL unreachable: %s", self.key, error)
            await self._drop()
            return False
        self._held = bool(row and row[0])
        return self._held

    async def held(self) -> bool:
        """Whether this session still holds the lock: its connection answers in time."""
        if not self._held or self._connection is None:
            return False
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                await self._connection.execute("SELECT 1")
        except (psycopg.Error, OSError, TimeoutError) as error:
            _log.warning("advisory lock %d lost with its session: %s", self.key, error)
            await self._drop()
            return False
        return True

    async def release(self) -> None:
        """Give the lock up, so that a standby may take it at once; then end the session."""
        if self._held and self._connection is not None:
            # Unlocked before the connection closes: the server ends a session asynchronously.
            with contextlib.suppress(psycopg.Error, OSError, TimeoutError):
                async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                    await self._connection.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        await self._drop()

    async def _drop(self) -> None:
        self._held = False
        connection, self._connection = self._connection, None
        if connection is not None and not connection.closed:
            with contextlib.suppress(psycopg.Error, OSError, TimeoutError):
                async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                    await connection.close()
