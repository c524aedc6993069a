"""Artifact throughput: our path (hash, store beside the events, relay upload, verified reads)
against the raw nats-py object store put/get, for 2 MB and 50 MB outputs.

Ours writes twice (the executor's store, then the relay's upload to the tenant's bucket) and
hashes every read; the raw figures are one put and one get of the same bytes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from nats.js import JetStreamContext

from rustchain.domain.plans.artifacts import externalize, internalize
from rustchain.platform.nats.artifact_relay import ArtifactUploader, download, ensure_bucket
from rustchain.platform.nats.jetstream import connect
from rustchain.platform.nats.server import NatsServer, NatsServerSettings
from rustchain.platform.storage.artifact_store import ArtifactStore
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store

SIZES = ((2_000_000, 10), (50_000_000, 2))
INLINE = 64 * 1024
MB = 1_000_000


def _rate(size: int, count: int, seconds: float) -> float:
    return size * count / MB / seconds


def _timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


async def _atimed(work: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await work()
    return time.perf_counter() - start


def _outputs(size: int, count: int) -> list[str]:
    # Distinct texts, so that content addressing does not turn a write into a no-op.
    return [f"{n:08d}" + "x" * (size - 8) for n in range(count)]


def _event_of(recorded: object) -> bytes:
    return json.dumps({"payload": {"output": recorded}}).encode()


async def _ours(
    store: ArtifactStore, js: JetStreamContext, size: int, count: int
) -> tuple[float, float, float, float]:
    tenant = f"ours{size}"
    outputs = _outputs(size, count)
    recorded: list[object] = []

    def write() -> None:
        for output in outputs:
            value, made = externalize(output, INLINE)
            store.put(tenant, made)
            recorded.append(value)

    written = _timed(write)
    uploader = ArtifactUploader(store)

    async def upload() -> None:
        for value in recorded:
            assert await uploader.upload(js, tenant, _event_of(value)) is None

    uploaded = await _atimed(upload)

    def read() -> None:
        for value in recorded:
            internalize(value, lambda ref: store.get(tenant, ref.sha256))

    read_back = _timed(read)

    async def fetch() -> None:
        for value in recorded:
            ref = value["$artifact"]  # type: ignore[index]
            assert await download(js, tenant, ref["sha256"]) is not None

    fetched = await _atimed(fetch)
    return (
        _rate(size, count, written),
        _rate(size, count, uploaded),
        _rate(size, count, read_back),
        _rate(size, count, fetched),
    )


async def _raw(js: JetStreamContext, size: int, count: int) -> tuple[float, float]:
    bucket = await ensure_bucket(js, f"raw{size}")
    outputs = [output.encode() for output in _outputs(size, count)]
    names = [uuid.uuid4().hex for _ in outputs]

    async def put() -> None:
        for name, data in zip(names, outputs, strict=True):
            await bucket.put(name, data)

    async def get() -> None:
        for name in names:
            await bucket.get(name)

    return _rate(size, count, await _atimed(put)), _rate(size, count, await _atimed(get))


async def _measure(url: str, home: Path) -> None:
    client = await connect(url, timeout=10)
    store = open_event_store(EventStoreSettings(name="bench", home=home))
    try:
        js = client.jetstream(timeout=30)
        for size, count in SIZES:
            written, uploaded, read_back, fetched = await _ours(store.artifacts, js, size, count)
            put, get = await _raw(js, size, count)
            label = f"{size // MB} MB x{count}"
            print(
                f"artifacts {label:<9} ours: store write {written:>6.0f} MB/s, upload"
                f" {uploaded:>6.0f} MB/s, store read+verify {read_back:>6.0f} MB/s, JetStream"
                f" read+verify {fetched:>6.0f} MB/s"
            )
            print(
                f"artifacts {label:<9} raw nats-py object store: put {put:>6.0f} MB/s,"
                f" get {get:>6.0f} MB/s"
            )
    finally:
        store.close()
        await client.close()


def main() -> None:
    """Print our artifact write/read rates beside the raw object store's."""
    logging.getLogger("nats").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        server = NatsServer(NatsServerSettings(store_dir=home / "nats"))
        server.start()
        try:
            asyncio.run(_measure(server.url, home))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
