"""The artifacts a history references, checked by their SHA-256 in the stores or an export.

An event records an artifact's SHA-256 and size, and the event's own hash covers them: so an
artifact proven to hash to what its event records is the one the step produced. A missing or
altered artifact is reported with the event that references it (mission, service, position).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path

from rustchain.domain.events.envelope import EventEnvelope
from rustchain.domain.plans.artifacts import ArtifactError, ArtifactRef, check_sha256, references
from rustchain.domain.plans.artifacts import verified as verified_bytes
from rustchain.platform.nats.artifact_relay import download
from rustchain.platform.nats.jetstream import NATS_ERRORS, NatsUnavailableError, connect
from rustchain.platform.storage.artifact_store import ArtifactStore
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.platform.storage.private_files import private_file

ARTIFACTS_FOLDER = "artifacts"
"""Where an export keeps the artifacts its events reference, one file per SHA-256."""
Reader = Callable[[EventEnvelope, ArtifactRef], bytes | None]


def referenced(events: Iterable[EventEnvelope]) -> Iterator[tuple[EventEnvelope, ArtifactRef]]:
    """Each artifact reference in the events' payloads, with the event that makes it."""
    for event in events:
        for ref in references(event.payload):
            yield event, ref


def where(event: EventEnvelope) -> str:
    """An event's place in its chain, as problems name it."""
    return (
        f"event {event.sequence} of {event.tenant}/{event.mission_id}/{event.service}"
        f" ({event.type}, id {event.id})"
    )


def artifact_problems(events: Iterable[EventEnvelope], read: Reader) -> list[str]:
    """Every referenced artifact that is missing or does not hash to what its event records."""
    problems: list[str] = []
    # Each artifact is read and hashed once; every event that references a bad one is named.
    outcomes: dict[tuple[str, str, str, int], str | None] = {}
    for event, ref in referenced(events):
        key = (event.service, event.tenant, ref.sha256, ref.size)
        if key not in outcomes:
            try:
                verified_bytes(ref, read(event, ref))
                outcomes[key] = None
            except ArtifactError as error:
                outcomes[key] = str(error)
        if outcomes[key] is not None:
            problems.append(f"{where(event)}: {outcomes[key]}")
    return problems


def verify_store_artifacts(events: list[EventEnvelope]) -> list[str]:
    """Check every referenced artifact against the store of the service that recorded it."""
    services = sorted({event.service for event, _ in referenced(events)})
    if not services:
        return []
    with ExitStack() as stack:
        stores: dict[str, ArtifactStore] = {}
        for name in services:
            store = open_event_store(EventStoreSettings.from_environ(name))
            stack.callback(store.close)
            stores[name] = store.artifacts

        def read(event: EventEnvelope, ref: ArtifactRef) -> bytes | None:
            return stores[event.service].get(event.tenant, ref.sha256)

        return artifact_problems(events, read)


def export_artifact_path(folder: Path, sha256: str) -> Path:
    """Where an export keeps one artifact."""
    return folder / ARTIFACTS_FOLDER / check_sha256(sha256)


def verify_export_artifacts(folder: Path, events: list[EventEnvelope]) -> list[str]:
    """Check every referenced artifact against the file the export holds for it."""

    def read(event: EventEnvelope, ref: ArtifactRef) -> bytes | None:
        path = export_artifact_path(folder, ref.sha256)
        return path.read_bytes() if path.is_file() else None

    return artifact_problems(events, read)


def write_export_artifacts(folder: Path, events: list[EventEnvelope]) -> int:
    """Copy each referenced artifact, verified, into the export; how many were written."""
    services = sorted({event.service for event, _ in referenced(events)})
    written: set[str] = set()
    with ExitStack() as stack:
        stores: dict[str, ArtifactStore] = {}
        for name in services:
            store = open_event_store(EventStoreSettings.from_environ(name))
            stack.callback(store.close)
            stores[name] = store.artifacts
        for event, ref in referenced(events):
            if ref.sha256 in written:
                continue
            # An altered artifact is not exported as if it were the recorded one.
            data = verified_bytes(ref, stores[event.service].get(event.tenant, ref.sha256))
            path = export_artifact_path(folder, ref.sha256)
            path.parent.mkdir(parents=True, exist_ok=True)
            private_file(path)
            path.write_bytes(data)
            written.add(ref.sha256)
    return len(written)


async def _jetstream_problems(url: str, tenant: str, events: list[EventEnvelope]) -> list[str]:
    client = await connect(url)
    try:
        js = client.jetstream()
        fetched: dict[str, bytes | None] = {}

        def read(event: EventEnvelope, ref: ArtifactRef) -> bytes | None:
            return fetched.get(ref.sha256)

        for _, ref in referenced(e for e in events if e.tenant == tenant):
            if ref.sha256 not in fetched:
                fetched[ref.sha256] = await download(js, tenant, ref.sha256)
        problems = artifact_problems((e for e in events if e.tenant == tenant), read)
        return [f"{problem} in JetStream's bucket" for problem in problems]
    finally:
        await client.close()


def verify_jetstream_artifacts(url: str, tenant: str, events: list[EventEnvelope]) -> list[str]:
    """Check every artifact the tenant's events reference against the tenant's JetStream bucket.

    Raises NatsUnavailableError when NATS cannot be reached or refuses the bucket.
    """
    if next(referenced(events), None) is None:
        return []
    try:
        return asyncio.run(_jetstream_problems(url, tenant, events))
    except NatsUnavailableError:
        raise
    except NATS_ERRORS as error:
        reason = str(error) or type(error).__name__
        raise NatsUnavailableError(f"JetStream at {url} failed: {reason}") from error
