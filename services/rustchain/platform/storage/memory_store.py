"""Per-tenant agent memory: the `MemoryStore` interface, and its embedded default on SQLite (FTS5
full-text search of documents, nearest-neighbour search of embedding vectors). The PostgreSQL
one is `postgres_memory_store.py`; the composition root chooses."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from rustchain.platform.storage.loadable_sqlite import connect_loadable
from rustchain.platform.storage.private_files import private_file
from rustchain.platform.storage.vector_index import VectorIndex

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    tenant TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL,
    content TEXT NOT NULL, metadata TEXT NOT NULL,
    PRIMARY KEY (tenant, collection, id)
);
CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts USING fts5(
    content, tenant UNINDEXED, collection UNINDEXED, id UNINDEXED
);
CREATE TABLE IF NOT EXISTS vectors (
    tenant TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL,
    dimensions INTEGER NOT NULL, vector BLOB NOT NULL, norm REAL NOT NULL,
    content TEXT NOT NULL, metadata TEXT NOT NULL,
    PRIMARY KEY (tenant, collection, id)
);
"""
_WORD = re.compile(r"\w+", re.UNICODE)


def query_words(query: str) -> list[str]:
    """The words a search looks for: the query's runs of letters and digits, each once. The
    user's text is data, never the database's query syntax."""
    return list(dict.fromkeys(word.lower() for word in _WORD.findall(query)))


class MemoryStore(Protocol):
    """Documents and embedding vectors per tenant and collection; every query is scoped by
    tenant. A document search matches any word of the query, best first."""

    def put(
        self,
        tenant: str,
        collection: str,
        content: str,
        doc_id: str | None,
        metadata: dict[str, Any],
    ) -> str:
        """Store or replace a document; returns its id."""

    def get(self, tenant: str, collection: str, doc_id: str) -> dict[str, Any] | None:
        """One document, or None."""

    def delete(self, tenant: str, collection: str, doc_id: str) -> bool:
        """Remove a document; False when there was none."""

    def documents(self, tenant: str, collection: str, limit: int = 100) -> list[dict[str, Any]]:
        """Documents of a collection, by id."""

    def search(self, tenant: str, collection: str, query: str, limit: int) -> list[dict[str, Any]]:
        """Documents matching any word of the query, best first, each with a positive `score`."""

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

    def nearest(
        self, tenant: str, collection: str, vector: list[float], limit: int
    ) -> list[dict[str, Any]]:
        """This tenant's vectors of the collection closest to `vector` (cosine), best first."""

    def close(self) -> None:
        """Release the database."""


class SqliteMemoryStore:
    """Documents per tenant and collection; every query is scoped by tenant."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Made 0600 before SQLite opens it; its -wal and -shm files take the same mode.
        private_file(path)
        self._connection = connect_loadable(path)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._vectors = VectorIndex(self._connection)

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
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                self._delete(tenant, collection, doc_id)
                self._connection.execute(
                    "INSERT INTO documents VALUES (?, ?, ?, ?, ?)",
                    (tenant, collection, doc_id, content, json.dumps(metadata, sort_keys=True)),
                )
                self._connection.execute(
                    "INSERT INTO documents_fts (content, tenant, collection, id) "
                    "VALUES (?, ?, ?, ?)",
                    (content, tenant, collection, doc_id),
                )
                self._connection.execute("COMMIT")
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
        return doc_id

    def _delete(self, tenant: str, collection: str, doc_id: str) -> int:
        self._connection.execute(
            "DELETE FROM documents_fts WHERE tenant = ? AND collection = ? AND id = ?",
            (tenant, collection, doc_id),
        )
        cursor = self._connection.execute(
            "DELETE FROM documents WHERE tenant = ? AND collection = ? AND id = ?",
            (tenant, collection, doc_id),
        )
        return cursor.rowcount

    def get(self, tenant: str, collection: str, doc_id: str) -> dict[str, Any] | None:
        """One document, or None."""
        with self._lock:
            row = self._connection.execute(
                "SELECT id, content, metadata FROM documents "
                "WHERE tenant = ? AND collection = ? AND id = ?",
                (tenant, collection, doc_id),
            ).fetchone()
        return None if row is None else document_of(row)

    def delete(self, tenant: str, collection: str, doc_id: str) -> bool:
        """Remove a document; False when there was none."""
        with self._lock:
            return self._delete(tenant, collection, doc_id) > 0

    def documents(self, tenant: str, collection: str, limit: int = 100) -> list[dict[str, Any]]:
        """Documents of a collection, by id."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT id, content, metadata FROM documents WHERE tenant = ? AND collection = ? "
                "ORDER BY id LIMIT ?",
                (tenant, collection, limit),
            ).fetchall()
        return [document_of(row) for row in rows]

    def search(self, tenant: str, collection: str, query: str, limit: int) -> list[dict[str, Any]]:
        """Documents matching any word of the query, best (BM25) first."""
        words = query_words(query)
        if not words:
            return []
        # Quoted terms: the user's text is data, never FTS5 query syntax.
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        with self._lock:
            rows = self._connection.execute(
                "SELECT d.id, d.content, d.metadata, bm25(documents_fts) AS rank "
                "FROM documents_fts JOIN documents d ON d.tenant = documents_fts.tenant "
                "AND d.collection = documents_fts.collection AND d.id = documents_fts.id "
                "WHERE documents_fts MATCH ? AND documents_fts.tenant = ? "
                "AND documents_fts.collection = ? ORDER BY rank LIMIT ?",
                (match, tenant, collection, limit),
            ).fetchall()
        return [{**document_of(row[:3]), "score": -float(row[3])} for row in rows]

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
        with self._lock:
            self._vectors.put(tenant, collection, doc_id, vector, content, metadata)
        return doc_id

    def nearest(
        self, tenant: str, collection: str, vector: list[float], limit: int
    ) -> list[dict[str, Any]]:
        """This tenant's vectors of the collection closest to `vector` (cosine), best first."""
        with self._lock:
            return self._vectors.nearest(tenant, collection, vector, limit)

    def close(self) -> None:
        """Close the database."""
        self._connection.close()


def document_of(row: Sequence[Any]) -> dict[str, Any]:
    """A stored row (id, content, metadata JSON) as a document."""
    return {"id": row[0], "content": row[1], "metadata": json.loads(row[2])}


class TenantMemory:
    """The MemoryClient the rag steps use: one tenant's view of a memory store."""

    def __init__(self, store: MemoryStore, tenant: str) -> None:
        self._store = store
        self._tenant = tenant

    async def add(
        self, collection: str, content: str, doc_id: str | None, metadata: dict[str, Any]
    ) -> str:
        """Store a document for this tenant."""
        return await asyncio.to_thread(
            self._store.put, self._tenant, collection, content, doc_id, metadata
        )

    async def search(self, collection: str, query: str, limit: int) -> list[dict[str, Any]]:
        """Search this tenant's documents."""
        return await asyncio.to_thread(self._store.search, self._tenant, collection, query, limit)

    async def add_vector(
        self,
        collection: str,
        doc_id: str | None,
        vector: list[float],
        content: str,
        metadata: dict[str, Any],
    ) -> str:
        """Store an embedding vector for this tenant."""
        return await asyncio.to_thread(
            self._store.put_vector, self._tenant, collection, doc_id, vector, content, metadata
        )

    async def nearest(
        self, collection: str, vector: list[float], limit: int
    ) -> list[dict[str, Any]]:
        """This tenant's stored vectors closest to `vector`."""
        return await asyncio.to_thread(self._store.nearest, self._tenant, collection, vector, limit)
