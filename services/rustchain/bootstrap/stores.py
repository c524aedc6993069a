"""The event stores a process opens, each named by its service in the settings."""

from __future__ import annotations

from collections.abc import Mapping

from eventsourcing.persistence import PersistenceError

from rustchain.platform.storage.event_store import (
    EventStoreError,
    EventStoreSettings,
    RecorderEventStore,
    describe_store,
    open_event_store,
)


class StoreUnreachableError(EventStoreError):
    """A store that cannot be opened; the message names it (never its password) and why."""


def store_settings(service: str, environ: Mapping[str, str]) -> EventStoreSettings:
    """Where a service's event store is, from the settings."""
    return EventStoreSettings.from_environ(service, environ)


def open_store(service: str, environ: Mapping[str, str]) -> RecorderEventStore:
    """A service's event store, its tables made if missing; StoreUnreachableError if it cannot
    be opened."""
    settings = store_settings(service, environ)
    try:
        return open_event_store(settings)
    except (EventStoreError, PersistenceError) as error:
        raise StoreUnreachableError(f"{describe_store(settings)}: {error}") from error
