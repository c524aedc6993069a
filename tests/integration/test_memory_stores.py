"""The memory stores' contract, on SQLite and PostgreSQL: documents, search, vectors, and each
tenant's memory apart, also under queries written to break out; on PostgreSQL, replicas (each
with its own connections) share one database."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
import pytest

from rustchain.generated.rustchain.memory.v1 import memory_pb2, memory_pb2_grpc
from rustchain.platform.grpc.client import tenant_metadata
from rustchain.platform.storage.memory_store import MemoryStore, SqliteMemoryStore
from rustchain.platform.storage.postgres_memory_store import PostgresMemoryStore
from rustchain.platform.storage.postgres_tables import PostgresUnavailableError
from tests.integration.conftest import postgres_url
from tests.integration.grpc_helpers import running_services
from tests.integration.postgres_databases import drop_tables, fresh_database, table_prefix

HOSTILE_QUERIES = [
    "tangerine' OR '1'='1",
    "tangerine'; DROP TABLE memory_documents; --",
    "tangerine & !launch",
    "!tangerine | launch:*",
    "tangerine <-> launch",
    "(((tangerine",
    "'tangerine' || (SELECT content FROM memory_documents)",
    "tangerine %s %(x)s $1 \\ \\\\",
    "tangerine\x00 launch",
    "tangerine or or -launch",
    '"tangerine" AND NOT launch NEAR(code)',
    "tangerine*",
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(kind, where): a SQLite file, or a PostgreSQL URL and a table prefix of this test."""
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "memory.sqlite3")
        return
    url, prefix = postgres_url(), table_prefix()
    yield url, prefix
    drop_tables(url, prefix, "documents", "vectors")


def _open(backend: tuple[str, str]) -> MemoryStore:
    kind, where = backend
    if kind == "sqlite":
        return SqliteMemoryStore(Path(where))
    return PostgresMemoryStore(kind, where)


@pytest.fixture
def memory(backend: tuple[str, str]) -> Iterator[MemoryStore]:
    """An open memory store of each kind, closed after the test."""
    store = _open(backend)
    yield store
    store.close()


def _ids(found: list[dict[str, object]]) -> list[object]:
    return [document["id"] for document in found]


def test_documents_are_stored_replaced_listed_by_id_and_deleted(memory: MemoryStore) -> None:
    assert memory.put("acme", "notes", "first text", "b", {"n": 1}) == "b"
    memory.put("acme", "notes", "second text", "B", {})
    memory.put("acme", "notes", "replaced text", "b", {"n": 2})
    generated = memory.put("acme", "notes", "no id given", None, {})

    assert memory.get("acme", "notes", "b") == {
        "id": "b",
        "content": "replaced text",
        "metadata": {"n": 2},
    }
    assert _ids(memory.documents("acme", "notes")) == sorted(["B", "b", generated])
    assert _ids(memory.documents("acme", "notes", limit=1)) == sorted(["B", "b", generated])[:1]
    assert memory.search("acme", "notes", "first", 10) == []
    assert memory.delete("acme", "notes", "b")
    assert not memory.delete("acme", "notes", "b")
    assert memory.get("acme", "notes", "b") is None
    assert memory.documents("acme", "other") == []


def test_search_finds_any_word_and_ranks_more_matches_first(memory: MemoryStore) -> None:
    memory.put("acme", "notes", "orange juice", "one", {})
    memory.put("acme", "notes", "Orange cake with orange zest and almond", "both", {})
    memory.put("acme", "notes", "plain bread", "none", {})

    found = memory.search("acme", "notes", "ALMOND orange", 10)

    assert _ids(found) == ["both", "one"]
    assert all(float(str(document["score"])) > 0 for document in found)
    # Each backend weighs length its own way (BM25, ts_rank); the limit holds on both.
    assert len(memory.search("acme", "notes", "orange", 1)) == 1
    assert memory.search("acme", "notes", "  ... !!! ", 10) == []


def test_no_tenant_sees_another_tenants_documents_whatever_the_query(
    memory: MemoryStore,
) -> None:
    memory.put("acme", "notes", "the launch code is tangerine", "secret", {"by": "ops"})
    memory.put("globex", "notes", "tangerine marmalade", "jam", {})

    for query in HOSTILE_QUERIES:
        assert _ids(memory.search("globex", "notes", query, 10)) == ["jam"], query
        assert _ids(memory.search("acme", "notes", query, 10)) == ["secret"], query
        assert memory.search("initech", "notes", query, 10) == [], query
    for tenant in ("acme' OR '1'='1", "%", "acme%", "*", "acme\\"):
        assert memory.search(tenant, "notes", "tangerine", 10) == [], tenant
        assert memory.documents(tenant, "notes") == [], tenant
        assert memory.get(tenant, "notes", "secret") is None, tenant
        assert not memory.delete(tenant, "notes", "secret"), tenant
    assert memory.get("globex", "notes", "secret") is None
    assert not memory.delete("globex", "notes", "secret")
    assert memory.get("acme", "notes", "secret") is not None


def test_no_tenant_sees_another_tenants_vectors(memory: MemoryStore) -> None:
    memory.put_vector("acme", "embeddings", "a", [1.0, 0.0, 0.0], "acme's", {"k": 1})
    memory.put_vector("acme", "embeddings", "b", [0.6, 0.8, 0.0], "acme's other", {})
    memory.put_vector("globex", "embeddings", "g", [1.0, 0.0, 0.0], "globex's", {})
    memory.put_vector("acme", "embeddings", "four", [1.0, 0.0, 0.0, 0.0], "other size", {})

    found = memory.nearest("acme", "embeddings", [1.0, 0.1, 0.0], 10)

    assert _ids(found) == ["a", "b"]
    assert found[0]["metadata"] == {"k": 1}
    assert float(str(found[0]["score"])) == pytest.approx(0.995037, abs=1e-5)
    assert _ids(memory.nearest("globex", "embeddings", [1.0, 0.1, 0.0], 10)) == ["g"]
    assert memory.nearest("acme' OR '1'='1", "embeddings", [1.0, 0.0, 0.0], 10) == []
    memory.put_vector("acme", "embeddings", "a", [0.0, 0.0, 1.0], "moved", {})
    assert _ids(memory.nearest("acme", "embeddings", [1.0, 0.1, 0.0], 1)) == ["b"]


@pytest.mark.postgres
def test_two_replicas_on_one_database_see_the_same_memory() -> None:
    url, prefix = postgres_url(), table_prefix()
    first, second = PostgresMemoryStore(url, prefix), PostgresMemoryStore(url, prefix)
    try:
        first.put("acme", "notes", "written by the first replica", "n1", {})
        second.put_vector("acme", "embeddings", "v1", [0.0, 1.0], "by the second", {})

        assert _ids(second.search("acme", "notes", "replica", 10)) == ["n1"]
        assert _ids(first.nearest("acme", "embeddings", [0.0, 1.0], 10)) == ["v1"]
        assert second.delete("acme", "notes", "n1")
        assert first.get("acme", "notes", "n1") is None
    finally:
        first.close()
        second.close()
        drop_tables(url, prefix, "documents", "vectors")


@pytest.mark.postgres
def test_postgres_refuses_what_it_cannot_hold_in_one_line() -> None:
    url, prefix = postgres_url(), table_prefix()
    memory = PostgresMemoryStore(url, prefix)
    try:
        with pytest.raises(ValueError, match="content must not contain NUL"):
            memory.put("acme", "notes", "nul\x00byte", "n", {})
        huge = " ".join(f"w{n:07d}" for n in range(130_000))
        with pytest.raises(ValueError, match="too long for tsvector"):
            memory.put("acme", "notes", huge, "big", {})
        assert memory.documents("acme", "notes") == []
    finally:
        memory.close()
        drop_tables(url, prefix, "documents", "vectors")


def test_an_unreachable_database_is_one_line_naming_it() -> None:
    with pytest.raises(PostgresUnavailableError) as caught:
        PostgresMemoryStore("postgresql://rustchain:secret@127.0.0.1:1/memory")
    assert str(caught.value).startswith("PostgreSQL at 127.0.0.1:1/memory is unreachable")
    assert "secret" not in str(caught.value)


@pytest.mark.postgres
def test_two_memory_services_on_one_database_serve_the_same_tenants_apart(
    tmp_path: Path,
) -> None:
    async def scenario(url: str) -> None:
        settings = {"RUSTCHAIN_DATABASE_URL": url}
        async with (
            running_services(tmp_path / "one", ("memory",), settings=settings) as one,
            running_services(tmp_path / "two", ("memory",), settings=settings) as two,
        ):
            first = memory_pb2_grpc.MemoryServiceStub(one.channel("memory"))
            second = memory_pb2_grpc.MemoryServiceStub(two.channel("memory"))
            acme, globex = tenant_metadata("acme"), tenant_metadata("globex")
            put = memory_pb2.PutRequest(
                collection="notes", id="n1", content="the launch code is tangerine"
            )
            await first.Put(put, metadata=acme)
            vector = memory_pb2.PutVectorRequest(
                collection="e", id="v1", vector=[1.0, 0.0], content="acme's vector"
            )
            await second.PutVector(vector, metadata=acme)

            search = memory_pb2.SearchRequest(collection="notes", query="tangerine")
            assert [d.id for d in (await second.Search(search, metadata=acme)).documents] == ["n1"]
            assert list((await second.Search(search, metadata=globex)).documents) == []
            nearest = memory_pb2.NearestRequest(collection="e", vector=[1.0, 0.0])
            assert [d.id for d in (await first.Nearest(nearest, metadata=acme)).documents] == ["v1"]
            assert list((await first.Nearest(nearest, metadata=globex)).documents) == []
            get = memory_pb2.GetRequest(collection="notes", id="n1")
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await second.Get(get, metadata=globex)
            assert caught.value.code() is grpc.StatusCode.NOT_FOUND
            nul = memory_pb2.PutRequest(collection="notes", content="a\x00b")
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await first.Put(nul, metadata=acme)
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert json.loads((await second.Get(get, metadata=acme)).metadata_json) == {}

    with fresh_database() as url:
        asyncio.run(scenario(url))


def test_serve_memory_without_its_database_exits_3_with_one_line(tmp_path: Path) -> None:
    environ = {
        **os.environ,
        "RUSTCHAIN_HOME": str(tmp_path),
        "RUSTCHAIN_DATABASE_URL": "postgresql://rustchain:secret@127.0.0.1:1/memory",
    }
    served = subprocess.run(
        [sys.executable, "-m", "rustchain", "serve", "memory"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert served.returncode == 3
    assert served.stderr.startswith(
        "rustchain serve memory: cannot open its tables: PostgreSQL at 127.0.0.1:1/memory is"
        " unreachable: connection failed"
    )
    assert served.stderr.count("\n") == 1 and "secret" not in served.stderr


@pytest.mark.postgres
def test_a_connection_the_server_dropped_fails_one_call_and_is_replaced() -> None:
    url, prefix = postgres_url(), table_prefix()
    memory = PostgresMemoryStore(url, prefix)
    try:
        memory.put("acme", "notes", "still here", "n1", {})
        with psycopg.connect(url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (f"rustchain {prefix}",),
            ).fetchone()
        assert killed is not None and killed[0] >= 1
        outcomes = []
        for _ in range(3):
            try:
                found = memory.get("acme", "notes", "n1")
            except PostgresUnavailableError as error:
                assert str(error).startswith("PostgreSQL at ")
                outcomes.append("unavailable")
            else:
                outcomes.append("found" if found else "missing")
        assert outcomes in (["unavailable", "found", "found"], ["found"] * 3), outcomes
    finally:
        memory.close()
        drop_tables(url, prefix, "documents", "vectors")


def test_a_query_of_thousands_of_words_is_searched(memory: MemoryStore) -> None:
    memory.put("acme", "notes", "needle in a haystack", "n", {})
    # The rag steps hand the store their query whatever its length (the service caps it at 16 KiB).
    query = " ".join(f"w{n}" for n in range(5_000)) + " needle"

    assert _ids(memory.search("acme", "notes", query, 10)) == ["n"]
    assert memory.search("globex", "notes", query, 10) == []


def test_sqlite_vectors_are_searched_by_sqlite_vec_and_agree_with_the_exact_scan(
    tmp_path: Path,
) -> None:
    import random
    import sqlite3

    from rustchain.platform.storage.vector_index import VectorIndex

    store = SqliteMemoryStore(tmp_path / "memory.sqlite3")
    try:
        # The store's connection loads sqlite-vec (the sqlean.py build of sqlite3), so the
        # distance is computed in SQLite, not by the exact scan in Python.
        assert store._vectors.uses_sqlite_vec
        generator = random.Random(7)
        for number in range(200):
            vector = [generator.uniform(-1, 1) for _ in range(8)]
            store.put_vector("acme", "e", f"v{number}", vector, f"doc {number}", {})
        query = [generator.uniform(-1, 1) for _ in range(8)]
        by_sqlite_vec = store.nearest("acme", "e", query, 10)
    finally:
        store.close()
    # The same table read by Python's own sqlite3 (no extensions here): the exact scan.
    plain = sqlite3.connect(tmp_path / "memory.sqlite3")
    try:
        scan = VectorIndex(plain)
        scan.uses_sqlite_vec = False
        by_scan = scan.nearest("acme", "e", query, 10)
    finally:
        plain.close()
    assert _ids(by_sqlite_vec) == _ids(by_scan)
    for found, expected in zip(by_sqlite_vec, by_scan, strict=True):
        assert found["score"] == pytest.approx(expected["score"], abs=1e-5)
