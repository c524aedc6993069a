"""The memory service's gRPC servicer: one tenant's documents and vectors per call, on the
deployment's memory store (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
from collections.abc import Sequence
from typing import Any

import grpc

from rustchain.generated.rustchain.memory.v1 import memory_pb2, memory_pb2_grpc
from rustchain.platform.grpc.request_checks import (
    MAX_DOCUMENT_BYTES,
    MAX_METADATA_BYTES,
    MAX_QUERY_BYTES,
    BadRequestError,
    check_count,
    check_json_object,
    check_name,
    check_text,
    request_tenant,
)
from rustchain.platform.grpc.server import ServiceBinding, StatusTable, abort_with
from rustchain.platform.storage.loadable_sqlite import LoadableSqliteError
from rustchain.platform.storage.memory_store import MemoryStore
from rustchain.platform.storage.postgres_tables import PostgresUnavailableError

STATUS: StatusTable = {
    BadRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    KeyError: grpc.StatusCode.NOT_FOUND,
    ValueError: grpc.StatusCode.INVALID_ARGUMENT,
    sqlite3.Error: grpc.StatusCode.UNAVAILABLE,
    LoadableSqliteError: grpc.StatusCode.UNAVAILABLE,
    PostgresUnavailableError: grpc.StatusCode.UNAVAILABLE,
}
DEFAULT_LIST_LIMIT = 100
DEFAULT_SEARCH_LIMIT = 10
MAX_LIMIT = 1000
MAX_DIMENSIONS = 16_384


def _limit(given: int, default: int) -> int:
    return check_count("limit", given, 0, MAX_LIMIT) or default


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

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    async def Put(
        self, request: memory_pb2.PutRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> memory_pb2.PutResponse:
        """Store or replace a document."""
        try:
            tenant = request_tenant(context.invocation_metadata())
            doc_id = await asyncio.to_thread(
                self.store.put,
                tenant,
                check_name("collection", request.collection),
                check_text("content", request.content, MAX_DOCUMENT_BYTES),
                check_name("id", request.id, required=False) or None,
                check_json_object("metadata_json", request.metadata_json, MAX_METADATA_BYTES),
            )
        except Exception as error:
            await abort_with(context, error, STATUS)
        return memory_pb2.PutResponse(id=doc_id)

    async def Get(
        self, request: memory_pb2.GetRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> memory_pb2.Document:
        """One document; NOT_FOUND when the tenant has none of that id."""
        try:
            tenant = request_tenant(context.invocation_metadata())
            found = await asyncio.to_thread(
                self.store.get,
                tenant,
                check_name("collection", request.collection),
                check_name("id", request.id),
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
        try:
            tenant = request_tenant(context.invocation_metadata())
            deleted = await asyncio.to_thread(
                self.store.delete,
                tenant,
                check_name("collection", request.collection),
                check_name("id", request.id),
            )
        except Exception as error:
            await abort_with(context, error, STATUS)
        return memory_pb2.DeleteResponse(deleted=deleted)

    async def List(
        self, request: memory_pb2.ListRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> memory_pb2.ListResponse:
        """Documents of a collection, by id."""
        try:
            tenant = request_tenant(context.invocation_metadata())
            documents = await asyncio.to_thread(
                self.store.documents,
                tenant,
                check_name("collection", request.collection),
                _limit(request.limit, DEFAULT_LIST_LIMIT),
            )
        except Exception as error:
            await abort_with(context, error, STATUS)
        return memory_pb2.ListResponse(documents=[document_message(d) for d in documents])

    async def Search(
        self, request: memory_pb2.SearchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> memory_pb2.ListResponse:
        """Documents matching any word of the query, best first."""
        try:
            tenant = request_tenant(context.invocation_metadata())
            documents = await asyncio.to_thread(
                self.store.search,
                tenant,
                check_name("collection", request.collection),
                check_text("query", request.query, MAX_QUERY_BYTES),
                _limit(request.limit, DEFAULT_SEARCH_LIMIT),
            )
        except Exception as error:
            await abort_with(context, error, STATUS)
        return memory_pb2.ListResponse(documents=[document_message(d) for d in documents])

    async def PutVector(
        self, request: memory_pb2.PutVectorRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> memory_pb2.PutResponse:
        """Store or replace an embedding vector with its text."""
        try:
            tenant = request_tenant(context.invocation_metadata())
            doc_id = await asyncio.to_thread(
                self.store.put_vector,
                tenant,
                check_name("collection", request.collection),
                check_name("id", request.id, required=False) or None,
                _vector(request.vector),
                check_text("content", request.content, MAX_DOCUMENT_BYTES),
                check_json_object("metadata_json", request.metadata_json, MAX_METADATA_BYTES),
            )
        except Exception as error:
            await abort_with(context, error, STATUS)
        return memory_pb2.PutResponse(id=doc_id)

    async def Nearest(
        self, request: memory_pb2.NearestRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> memory_pb2.ListResponse:
        """The tenant's vectors nearest the request's, best first."""
        try:
            tenant = request_tenant(context.invocation_metadata())
            documents = await asyncio.to_thread(
                self.store.nearest,
                tenant,
                check_name("collection", request.collection),
                _vector(request.vector),
                _limit(request.limit, DEFAULT_SEARCH_LIMIT),
            )
        except Exception as error:
            await abort_with(context, error, STATUS)
        return memory_pb2.ListResponse(documents=[document_message(d) for d in documents])


def _vector(values: Sequence[float]) -> list[float]:
    vector = list(values)
    if not 0 < len(vector) <= MAX_DIMENSIONS or not all(math.isfinite(x) for x in vector):
        raise ValueError(f"vector must hold 1 to {MAX_DIMENSIONS} finite numbers")
    return vector


def binding(servicer: MemoryServicer) -> ServiceBinding:
    """The servicer as the gRPC server helper takes it."""
    return ServiceBinding(
        servicer,
        memory_pb2_grpc.add_MemoryServiceServicer_to_server,
        memory_pb2.DESCRIPTOR.services_by_name["MemoryService"].full_name,
    )
