"""Per-tenant agent memory on PostgreSQL, shared by any number of memory replicas.

Documents are searched with PostgreSQL full-text search: a stored `tsvector` column under a GIN
index, and a `to_tsquery` of the query's words, each quoted as a lexeme and joined with OR (so
the user's text is never tsquery syntax, and any word matches, as on SQLite), ordered by
`ts_rank`. The `simple`
configuration (lower case, no stemming, no stop words) matches SQLite FTS5's tokens in any
language. Vectors are float32 `bytea` beside their length; with no pgvector on the server, the
exact cosine scan runs in Python over the tenant's vectors of that collection and dimension.
Every statement names the tenant in its WHERE (or its key), and every key starts with it.

The GIN index takes new entries into its pending list (cheap puts) but merges the list into the
index at 256 kB rather than the server's 4 MB default, since every search reads the whole list:
searches stay fast between vacuums, and puts cost a quarter of an unbuffered index's.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from rustchain.platform.storage.memory_store import document_of, query_words
from rustchain.platform.storage.postgres_tables import PostgresTables
from rustchain.platform.storage.vector_index import nearest_by_scan, norm, packed

MEMORY_TABLES = "memory"
"""The tables' prefix in a deployment's database: `memory_documents`, `memory_vectors`."""
SEARCH_CONFIGURATION = "simple"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS {prefix}_documents (
    tenant TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL,
    content TEXT NOT NULL, metadata TEXT NOT NULL,
    search TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED,
    PRIMARY KEY (tenant, collection, id)
);
CREATE INDEX IF NOT EXISTS {prefix}_documents_search ON {prefix}_documents USING GIN (search)
    WITH (fastupdate = on, gin_pending_list_limit = 256);
CREATE TABLE IF NOT EXISTS {prefix}_vectors (
    tenant TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL,
    dimensions INTEGER NOT NULL, vector BYTEA NOT NULL, norm DOUBLE PRECISION NOT NULL,
    content TEXT NOT NULL, metadata TEXT NOT NULL,
    PRIMARY KEY (tenant, collection, id)
);
"""
_SCOPE = "tenant = %s AND collection = %s"
# Ids sort by their bytes, as on SQLite, whatever the database's collation.
_BY_ID = 'id COLLATE "C"'


def any_of(words: list[str]) -> str:
    """A tsquery that matches any of the words, each quoted as one lexeme: no word can be an
    operator, and the query stays one flat OR however many words (a chain of `||` expressions
    exhausts the server's parser stack at a few thousand)."""
    return " | ".join("'" + word.replace("\\", "\\\\").replace("'", "''") + "'" for word in words)


def _text(field: str, value: str) -> str:
    if "\x00" in value:
        raise ValueError(f"{field} must not contain NUL characters (PostgreSQL text cannot)")
    return value


class PostgresMemoryStore:
    """A MemoryStore in the `<prefix>_documents` and `<prefix>_vectors` tables of a database."""

    def __init__(self, url: str, prefix: str = MEMORY_TABLES) -> None:
        self._tables = PostgresTables(url, prefix, _SCHEMA)
        self._documents = f"{prefix}_documents"
        self._vectors = f"{prefix}_vectors"

    def put(
        self,
        tenant: str,
        collection: str,
        content: str,
        doc_id: str | None,
        metadata: dict[str, Any],
    ) -> str:
        """Store or replace a document; returns its id."""
        doc_id = doc_id or uuid.uuid4().hex
        with self._tables.statement() as cursor:
            cursor.execute(
                f"INSERT INTO {self._documents} (tenant, collection, id, content, metadata)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (tenant, collection, id)"
                " DO UPDATE SET content = excluded.content, metadata = excluded.metadata",
                (
                    tenant,
                    collection,
                    doc_id,
                    _text("content", content),
                    json.dumps(metadata, sort_keys=True),
                ),
            )
        return doc_id

    def get(self, tenant: str, collection: str, doc_id: str) -> dict[str, Any] | None:
        """One document, or None."""
        with self._tables.statement() as cursor:
            cursor.execute(
                f"SELECT id, content, metadata FROM {self._documents} WHERE {_SCOPE} AND id = %s",
                (tenant, collection, doc_id),
            )
            row = cursor.fetchone()
        return None if row is None else document_of(row)

    def delete(self, tenant: str, collection: str, doc_id: str) -> bool:
        """Remove a document; False when there was none."""
        with self._tables.statement() as cursor:
            cursor.execute(
                f"DELETE FROM {self._documents} WHERE {_SCOPE} AND id = %s",
                (tenant, collection, doc_id),
            )
            return cursor.rowcount > 0

    def documents(self, tenant: str, collection: str, limit: int = 100) -> list[dict[str, Any]]:
        """Documents of a collection, by id."""
        with self._tables.statement() as cursor:
            cursor.execute(
                f"SELECT id, content, metadata FROM {self._documents} WHERE {_SCOPE}"
                f" ORDER BY {_BY_ID} LIMIT %s",
                (tenant, collection, limit),
            )
            rows = cursor.fetchall()
        return [document_of(row) for row in rows]

    def search(self, tenant: str, collection: str, query: str, limit: int) -> list[dict[str, Any]]:
        """Documents matching any word of the query, best (`ts_rank`) first."""
        words = query_words(query)
        if not words:
            return []
        statement = (
            "SELECT id, content, metadata, ts_rank(search, query) AS rank"
            f" FROM {self._documents}, to_tsquery('{SEARCH_CONFIGURATION}', %s) AS query"
            " WHERE tenant = %s AND collection = %s AND search @@ query"
            f" ORDER BY rank DESC, {_BY_ID} LIMIT %s"
        )
        with self._tables.statement() as cursor:
            cursor.execute(statement, (any_of(words), tenant, collection, limit))
            rows = cursor.fetchall()
        return [{**document_of(row[:3]), "score": float(row[3])} for row in rows]

    def put_vector(
        self,
        tenant: str,
        collection: str,
        doc_id: str | None,
        vector: list[float],
        content: str,
        metadata: dict[str, Any],
    ) -> str:
        """Store or replace an embedding vector with its text; returns its id."""
        doc_id = doc_id or uuid.uuid4().hex
        with self._tables.statement() as cursor:
            cursor.execute(
                f"INSERT INTO {self._vectors} VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (tenant, collection, id) DO UPDATE SET"
                " dimensions = excluded.dimensions, vector = excluded.vector,"
                " norm = excluded.norm, content = excluded.content, metadata = excluded.metadata",
                (
                    tenant,
                    collection,
                    doc_id,
                    len(vector),
                    packed(vector),
                    norm(vector),
                    _text("content", content),
                    json.dumps(metadata, sort_keys=True),
                ),
            )
        return doc_id

    def nearest(
        self, tenant: str, collection: str, vector: list[float], limit: int
    ) -> list[dict[str, Any]]:
        """This tenant's vectors of the collection closest to `vector` (cosine), best first."""
        with self._tables.statement() as cursor:
            cursor.execute(
                f"SELECT id, content, metadata, vector, norm FROM {self._vectors}"
                f" WHERE {_SCOPE} AND dimensions = %s",
                (tenant, collection, len(vector)),
            )
            stored = cursor.fetchall()
        return nearest_by_scan(vector, stored, limit)

    def close(self) -> None:
        """Close the connections."""
        self._tables.close()
