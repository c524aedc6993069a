"""The memory service keeps each tenant's documents apart: put, get, list, search, delete; on
SQLite and on PostgreSQL (a fresh database each)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from rustchain.generated.rustchain.memory.v1 import memory_pb2, memory_pb2_grpc
from rustchain.platform.grpc.client import tenant_metadata
from tests.integration.grpc_helpers import running_services
from tests.integration.postgres_databases import fresh_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def memory_settings(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The settings of a deployment whose memory is on SQLite, or on PostgreSQL."""
    if request.param == "sqlite":
        yield {}
        return
    with fresh_database() as url:
        yield {"RUSTCHAIN_DATABASE_URL": url}


def test_tenants_never_see_each_others_memory(
    tmp_path: Path, memory_settings: dict[str, str]
) -> None:
    async def scenario() -> None:
        async with running_services(tmp_path, ("memory",), settings=memory_settings) as services:
            memory = memory_pb2_grpc.MemoryServiceStub(services.channel("memory"))
            acme, globex = tenant_metadata("acme"), tenant_metadata("globex")
            put = memory_pb2.PutRequest(
                collection="notes",
                id="n1",
                content="the launch code is tangerine",
                metadata_json=json.dumps({"by": "ops"}),
            )
            assert (await memory.Put(put, metadata=acme)).id == "n1"
            other = memory_pb2.PutRequest(collection="notes", content="tangerine marmalade recipe")
            other_id = (await memory.Put(other, metadata=globex)).id
            assert other_id

            search = memory_pb2.SearchRequest(collection="notes", query="tangerine")
            found = (await memory.Search(search, metadata=acme)).documents
            assert [(d.id, d.content) for d in found] == [("n1", "the launch code is tangerine")]
            assert json.loads(found[0].metadata_json) == {"by": "ops"}
            assert found[0].score > 0
            theirs = (await memory.Search(search, metadata=globex)).documents
            assert [d.id for d in theirs] == [other_id]
            nobody = await memory.Search(search, metadata=tenant_metadata("initech"))
            assert list(nobody.documents) == []

            listed = await memory.List(memory_pb2.ListRequest(collection="notes"), metadata=acme)
            assert [d.id for d in listed.documents] == ["n1"]
            get = memory_pb2.GetRequest(collection="notes", id="n1")
            assert (await memory.Get(get, metadata=acme)).content == "the launch code is tangerine"
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await memory.Get(get, metadata=globex)
            assert caught.value.code() is grpc.StatusCode.NOT_FOUND

            delete = memory_pb2.DeleteRequest(collection="notes", id="n1")
            assert not (await memory.Delete(delete, metadata=globex)).deleted
            assert (await memory.Delete(delete, metadata=acme)).deleted
            assert list((await memory.Search(search, metadata=acme)).documents) == []

    asyncio.run(scenario())


def test_bad_requests_are_invalid_arguments(
    tmp_path: Path, memory_settings: dict[str, str]
) -> None:
    async def scenario() -> None:
        async with running_services(tmp_path, ("memory",), settings=memory_settings) as services:
            memory = memory_pb2_grpc.MemoryServiceStub(services.channel("memory"))
            for request in (
                memory_pb2.PutRequest(collection="notes", content="x", metadata_json="[1]"),
                memory_pb2.PutRequest(collection="", content="x"),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await memory.Put(request)
                assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await memory.List(memory_pb2.ListRequest(collection="notes", limit=-1))
            assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    asyncio.run(scenario())
