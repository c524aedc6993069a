"""Embedding vectors in the memory store's SQLite database, searched by cosine distance.

Every query is scoped by tenant and collection. The distance is sqlite-vec's
`vec_distance_cosine` where the connection can load extensions (the memory store opens its
database through sqlean.py, which can: platform/storage/loadable_sqlite.py); on a connection that
cannot (Python's own sqlite3 built without `enable_load_extension`) the same exact scan runs in
Python over the tenant's vectors of that collection and dimension.
"""

from __future__ import annotations

import json
import math
import operator
import sqlite3
import struct
import sys
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

import sqlite_vec  # type: ignore[import-untyped]  # ships no type information

from rustchain.platform.storage.loadable_sqlite import SQLITE_ERRORS

_INSERT = "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_SCOPE = "FROM vectors WHERE tenant = ? AND collection = ? AND dimensions = ?"


def packed(vector: list[float]) -> bytes:
    """The vector as sqlite-vec stores it: little-endian float32."""
    return struct.pack(f"<{len(vector)}f", *vector)


def unpacked(data: bytes) -> array[float]:
    """A stored vector's floats."""
    floats = array("f")
    floats.frombytes(data)
    if sys.byteorder == "big":
        floats.byteswap()
    return floats


def norm(vector: Sequence[float]) -> float:
    """The vector's Euclidean length."""
    return math.sqrt(sum(map(operator.mul, vector, vector)))


def cosine_distance(a: Sequence[float], b: Sequence[float], norms: float) -> float:
    """1 - cosine similarity given the product of both lengths, as sqlite-vec's
    vec_distance_cosine (2.0 for a zero vector)."""
    # map(mul) keeps the loop in C: faster than a generator over zip.
    return 1.0 - sum(map(operator.mul, a, b)) / norms if norms else 2.0


def _loaded(connection: sqlite3.Connection) -> bool:
    enable = getattr(connection, "enable_load_extension", None)
    if enable is None:
        return False
    enable(True)
    try:
        sqlite_vec.load(connection)
    except SQLITE_ERRORS:
        return False
    finally:
        enable(False)
    return True


class VectorIndex:
    """The `vectors` table of a memory store's connection (the caller holds its lock)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self.uses_sqlite_vec = _loaded(connection)

    def put(
        self,
        tenant: str,
        collection: str,
        doc_id: str,
        vector: list[float],
        content: str,
        metadata: dict[str, Any],
    ) -> None:
        """Store or replace one vector."""
        row = (tenant, collection, doc_id, len(vector), packed(vector), norm(vector), content)
        self._connection.execute(_INSERT, (*row, json.dumps(metadata, sort_keys=True)))

    def nearest(
        self, tenant: str, collection: str, vector: list[float], limit: int
    ) -> list[dict[str, Any]]:
        """The closest vectors of the same dimension, with `score` = cosine similarity."""
        scope = (tenant, collection, len(vector))
        if self.uses_sqlite_vec:
            rows = self._connection.execute(
                f"SELECT id, content, metadata, vec_distance_cosine(vector, ?) AS d {_SCOPE} "
                "ORDER BY d LIMIT ?",
                (packed(vector), *scope, limit),
            ).fetchall()
            return found(rows)
        stored = self._connection.execute(
            f"SELECT id, content, metadata, vector, norm {_SCOPE}", scope
        ).fetchall()
        return nearest_by_scan(vector, stored, limit)


def nearest_by_scan(
    vector: list[float], stored: Sequence[Sequence[Any]], limit: int
) -> list[dict[str, Any]]:
    """The exact scan: of rows (id, content, metadata JSON, packed vector, its norm), the
    `limit` closest to `vector` by cosine distance, best first, ties by id."""
    length = norm(vector)
    scored = [(*r[:3], cosine_distance(vector, unpacked(r[3]), length * r[4])) for r in stored]
    # Python orders text by code point, which is UTF-8's byte order: SQLite's and PostgreSQL's
    # binary order of the ids.
    return found(sorted(scored, key=lambda r: (r[3], r[0]))[:limit])


def found(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows (id, content, metadata JSON, cosine distance) as documents scored by similarity."""
    return [
        {"id": r[0], "content": r[1], "metadata": json.loads(r[2]), "score": 1.0 - r[3]}
        for r in rows
    ]
