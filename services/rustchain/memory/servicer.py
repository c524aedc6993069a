"""The memory service's gRPC servicer: one tenant's documents per call, on the SQLite FTS5 store."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import Any

import grpc

from rustchain.generated.rustchain.memory.v1 import memory_pb2, memory_pb2_grpc
from rustchain.platform.grpc_client import tenant_of
from rustchain.platform.grpc_server import ServiceBinding, StatusTable, abort_with
from rustchain.platform.memory_store import SqliteMemoryStore

STATUS: StatusTable = {
    KeyError: grpc.StatusCode.NOT_FOUND,
    ValueError: grpc.StatusCode.INVALID_ARGUMENT,
    sqlite3.Error: grpc.StatusCode.UNAVAILABLE,
}
DEFAULT_LIST_LIMIT = 100
DEFAULT_SEARCH_LIMIT = 10
MAX_LIMIT = 1000


def _metadata(text: str) -> dict[str, Any]:
    value = json.loads(text or "{}")
    if not isinstance(value, dict):
        raise ValueError("metadata_json must be a JSON object")
    return value


def _limit(given: int, default: int) -> int:
    if given < 0:
        raise ValueError(f"limit must be 0 or more, found {given}")
    return min(given or default, MAX_LIMIT)


def _collection(name: str) -> str:
    if not name:
        raise ValueError("a collection name is required")
    return name


def document_message(document: dict[str, Any]) -> memory_pb2.Document:
    """The protobuf form of a stored document."""
    return memory_pb2.Document(
        id=document["id"],
        content=document["content"],
        metadata_json=json.dumps(document["metadata"], sort_keys=True, ensure_ascii=False),
        score=float(document.get("score", 0.0)),
    )


class MemoryServicer(memory_pb2_grpc.MemoryServiceServicer):
    """Every call reads and writes only the documents of the tenant its metadata names."""

    def __init__(self, store: SqliteMemoryStore) -> None:
        self.store = store

    async def Put(
        self, request: memory_pb2.PutRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> memory_pb2.PutResponse:
        """Store or replace a document."""
        tenant = tenant_of(context.invocation_metadata())
        try:
            doc_id = await asyncio.to_thread(
                self.store.put,
                tenant,
                _collection(request.collection),
                request.content,
                request.id or None,
                _metadata(request.metadata_json),
            )
        except Exception as error:
            await abort_with(context, error, STATUS)
        return memory_pb2.PutResponse(id=doc_id)

    async def Get(
        self, request: memory_pb2.GetRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> memory_pb2.Document:
        """One document; NOT_FOUND when the tenant has none of that id."""
        tenant = tenant_of(context.invocation_metadata())
        try:
            found = await asyncio.to_thread(
                self.store.get, tenant, _collection(request.collection), request.id
            )
            if found is None:
                raise KeyError(f"no document '{request.id}' in '{request.collection}'")
        except Exception as error:
            await abort_with(context, error, STATUS)
        return document_message(found)

    async def Delete(
        self, request: memory_pb2.DeleteRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> memory_pb2.DeleteResponse:
        """Remove a document; deleted is False when there was none."""
        tenant = tenant_of(context.invocation_metadata())
        try:
            deleted = await asyncio.to_thread(
                self.store.delete, tenant, _collection(request.collection), request.id
            )
        except Exception as error:
            await abort_with(context, error, STATUS)
        return memory_pb2.DeleteResponse(deleted=deleted)

    async def List(
        self, request: memory_pb2.ListRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> memory_pb2.ListResponse:
        """Documents of a collection, by id."""
        tenant = tenant_of(context.invocation_metadata())
        try:
            documents = await asyncio.to_thread(
                self.store.documents,
                tenant,
                _collection(request.collection),
                _limit(request.limit, DEFAULT_LIST_LIMIT),
            )
        except Exception as error:
            await abort_with(context, error, STATUS)
        return memory_pb2.ListResponse(documents=[document_message(d) for d in documents])

    async def Search(
        self, request: memory_pb2.SearchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> memory_pb2.ListResponse:
        """Documents matching any word of the query, best first."""
        tenant = tenant_of(context.invocation_metadata())
        try:
            documents = await asyncio.to_thread(
                self.store.search,
                tenant,
                _collection(request.collection),
                request.query,
                _limit(request.limit, DEFAULT_SEARCH_LIMIT),
            )
        except Exception as error:
            await abort_with(context, error, STATUS)
        return memory_pb2.ListResponse(documents=[document_message(d) for d in documents])


def binding(servicer: MemoryServicer) -> ServiceBinding:
    """The servicer as the gRPC server helper takes it."""
    return ServiceBinding(
        servicer,
        memory_pb2_grpc.add_MemoryServiceServicer_to_server,
        memory_pb2.DESCRIPTOR.services_by_name["MemoryService"].full_name,
    )
