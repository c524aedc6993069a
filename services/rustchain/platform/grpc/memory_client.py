"""The rag steps' MemoryClient over gRPC: one tenant's view of the memory service."""

from __future__ import annotations

import json
from typing import Any

import grpc

from rustchain.generated.rustchain.memory.v1 import memory_pb2, memory_pb2_grpc
from rustchain.platform.grpc.client import call_error, tenant_metadata
from rustchain.steps.support.runtime import StepRunError

SERVICE = "memory"


class GrpcMemoryClient:
    """Adds and searches documents and vectors of one tenant through the memory service."""

    def __init__(self, channel: grpc.aio.Channel, endpoint: str, tenant: str) -> None:
        self._stub = memory_pb2_grpc.MemoryServiceStub(channel)
        self._endpoint = endpoint
        self._metadata = tenant_metadata(tenant)

    async def add(
        self, collection: str, content: str, doc_id: str | None, metadata: dict[str, Any]
    ) -> str:
        """Store a document for this tenant; returns its id."""
        request = memory_pb2.PutRequest(
            collection=collection,
            id=doc_id or "",
            content=content,
            metadata_json=json.dumps(metadata, sort_keys=True),
        )
        try:
            reply = await self._stub.Put(request, metadata=self._metadata)
        except grpc.aio.AioRpcError as error:
            raise _step_error(error, self._endpoint) from None
        return reply.id

    async def search(self, collection: str, query: str, limit: int) -> list[dict[str, Any]]:
        """This tenant's documents matching the query, best first."""
        request = memory_pb2.SearchRequest(collection=collection, query=query, limit=limit)
        try:
            reply = await self._stub.Search(request, metadata=self._metadata)
        except grpc.aio.AioRpcError as error:
            raise _step_error(error, self._endpoint) from None
        return [
            {
                "id": d.id,
                "content": d.content,
                "metadata": json.loads(d.metadata_json or "{}"),
                "score": d.score,
            }
            for d in reply.documents
        ]

    async def add_vector(
        self,
        collection: str,
        doc_id: str | None,
        vector: list[float],
        content: str,
        metadata: dict[str, Any],
    ) -> str:
        """Store an embedding vector for this tenant; returns its id."""
        request = memory_pb2.PutVectorRequest(
            collection=collection,
            id=doc_id or "",
            vector=vector,
            content=content,
            metadata_json=json.dumps(metadata, sort_keys=True),
        )
        try:
            reply = await self._stub.PutVector(request, metadata=self._metadata)
        except grpc.aio.AioRpcError as error:
            raise _step_error(error, self._endpoint) from None
        return reply.id

    async def nearest(
        self, collection: str, vector: list[float], limit: int
    ) -> list[dict[str, Any]]:
        """This tenant's stored vectors nearest `vector`, best first."""
        request = memory_pb2.NearestRequest(collection=collection, vector=vector, limit=limit)
        try:
            reply = await self._stub.Nearest(request, metadata=self._metadata)
        except grpc.aio.AioRpcError as error:
            raise _step_error(error, self._endpoint) from None
        return [
            {
                "id": d.id,
                "content": d.content,
                "metadata": json.loads(d.metadata_json or "{}"),
                "score": d.score,
            }
            for d in reply.documents
        ]


def _step_error(error: grpc.aio.AioRpcError, endpoint: str) -> StepRunError:
    """A failed memory call as the rag step's error: one line, never a gRPC object's text."""
    if error.code() is grpc.StatusCode.UNAVAILABLE:
        return StepRunError(str(call_error(error, SERVICE, endpoint)))
    detail = " ".join((error.details() or error.code().name).split())
    return StepRunError(f"the memory service refused the request: {detail}")
