"""Artifacts into the tenant's JetStream object store, before the event that references them.

One bucket per tenant (`ARTIFACTS_<TENANT>`), each object named by its SHA-256: uploading the same
artifact again finds it there and sends nothing, so a relay that restarts mid-way is idempotent.
An event is published only once every artifact it references is in the bucket, so a reader of
the stream always finds the bytes an event names.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import ObjectMeta, ObjectStoreConfig, StorageType
from nats.js.object_store import ObjectStore

from rustchain.domain.events.names import object_bucket, object_stream
from rustchain.domain.plans.artifacts import ARTIFACT_MARKER, ArtifactRef, references
from rustchain.platform.nats.jetstream import StreamSettings
from rustchain.platform.storage.artifact_store import ArtifactStore


class ArtifactUploadError(RuntimeError):
    """An artifact that could not be put into its tenant's bucket (missing locally, or refused)."""


def referenced(data: bytes) -> list[ArtifactRef]:
    """The artifacts a stored event references (none, without parsing, for most events)."""
    if ARTIFACT_MARKER not in data:
        return []
    document: dict[str, Any] = json.loads(data)
    return list(references(document.get("payload")))


async def ensure_bucket(
    js: JetStreamContext, tenant: str, settings: StreamSettings | None = None
) -> ObjectStore:
    """The tenant's object store bucket, made when missing (file storage, the stream's quota)."""
    bucket = object_bucket(tenant)
    try:
        return await js.object_store(bucket)
    except nats.js.errors.BucketNotFoundError:
        limits = settings or StreamSettings()
        config = ObjectStoreConfig(
            bucket=bucket,
            description=f"artifacts of tenant {tenant}, named by SHA-256",
            storage=StorageType.FILE,
            max_bytes=limits.max_bytes,
            replicas=limits.replicas,
        )
        return await js.create_object_store(bucket, config)


async def stored_size(bucket: ObjectStore, sha256: str) -> int | None:
    """The size of an object the bucket holds under that name (None when it holds none)."""
    try:
        info = await bucket.get_info(sha256)
    except nats.js.errors.ObjectNotFoundError:
        return None
    return None if info.deleted else info.size


class ArtifactUploader:
    """Uploads the artifacts a store's events reference to their tenants' buckets, once each."""

    def __init__(self, store: ArtifactStore, settings: StreamSettings | None = None) -> None:
        self.store = store
        self.settings = settings or StreamSettings()
        self.uploaded = 0
        self.uploaded_bytes = 0
        self._buckets: dict[str, ObjectStore] = {}
        # Known to be in their buckets on this connection: (tenant, sha256).
        self._held: set[tuple[str, str]] = set()

    def forget(self) -> None:
        """Drop what is known of buckets (a new connection, or a bucket made again)."""
        self._buckets.clear()
        self._held.clear()

    async def upload(self, js: JetStreamContext, tenant: str, data: bytes) -> str | None:
        """Upload what the event references; None when all is there, else why it cannot be."""
        for ref in referenced(data):
            if (tenant, ref.sha256) in self._held:
                continue
            if tenant not in self._buckets:
                self._buckets[tenant] = await ensure_bucket(js, tenant, self.settings)
            bucket = self._buckets[tenant]
            if await stored_size(bucket, ref.sha256) != ref.size:
                content = await asyncio.to_thread(self.store.get, tenant, ref.sha256)
                if content is None:
                    return (
                        f"artifact {ref.sha256} ({ref.size:,} bytes) is referenced by an event"
                        " but missing from the event store's artifacts"
                    )
                try:
                    meta = ObjectMeta(name=ref.sha256, description=ref.media_type)
                    await bucket.put(ref.sha256, content, meta)
                except nats.js.errors.APIError as error:
                    if error.err_code is None:
                        raise
                    return (
                        f"bucket {object_bucket(tenant)} refused artifact {ref.sha256}"
                        f" ({ref.size:,} bytes): {error.description or error}"
                    )
                self.uploaded += 1
                self.uploaded_bytes += ref.size
            self._held.add((tenant, ref.sha256))
        return None


async def download(
    js: JetStreamContext, tenant: str, sha256: str, chunk_timeout: float = 10.0
) -> bytes | None:
    """An artifact's bytes as the tenant's bucket holds them (None when it holds none); the
    caller verifies them against the SHA-256.

    Read by an ordered consumer bound to the bucket's stream by name: nats-py's own `get` asks
    the server which stream holds the subject ($JS.API.STREAM.NAMES), a request a tenant's
    credential is refused because its answer would name other tenants.
    """
    try:
        bucket = await js.object_store(object_bucket(tenant))
        info = await bucket.get_info(sha256)
    except (nats.js.errors.BucketNotFoundError, nats.js.errors.ObjectNotFoundError):
        return None
    if info.deleted or not info.size:
        return None if info.deleted else b""
    chunks = f"$O.{object_bucket(tenant)}.C.{info.nuid}"
    received = bytearray()
    subscription = await js.subscribe(chunks, stream=object_stream(tenant), ordered_consumer=True)
    try:
        while True:
            message = await subscription.next_msg(timeout=chunk_timeout)
            received += message.data
            if message.metadata.num_pending == 0:
                return bytes(received)
    finally:
        await subscription.unsubscribe()
