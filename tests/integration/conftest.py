"""Fixtures for integration tests: real SQLite and PostgreSQL stores, a real nats-server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from rustchain.platform.nats.server import NatsServer, NatsServerSettings
from rustchain.platform.storage.event_store import (
    EventStoreSettings,
    RecorderEventStore,
    open_event_store,
)

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    """The test server's URL, or skip (fail when RUSTCHAIN_REQUIRE_POSTGRES=1) if unreachable."""
    url = os.environ.get("RUSTCHAIN_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    try:
        with psycopg.connect(url, connect_timeout=3):
            pass
    except psycopg.Error as error:
        message = f"PostgreSQL at {url} is unreachable: {error}"
        if os.environ.get("RUSTCHAIN_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return url


def _drop_tables(url: str, prefix: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        for table in (
            f"{prefix}_events",
            f"{prefix}_tracking",
            f"{prefix}_checkpoints",
            f"{prefix}_artifacts",
            f"{prefix}_leases",
        ):
            connection.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStoreSettings]:
    """Settings of a fresh, empty store of each kind; its tables are unique to this test."""
    name = f"t{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        yield EventStoreSettings(name=name, home=tmp_path)
        return
    url = postgres_url()
    yield EventStoreSettings(name=name, home=tmp_path, database_url=url)
    _drop_tables(url, name)


@pytest.fixture
def store(store_settings: EventStoreSettings) -> Iterator[RecorderEventStore]:
    """An open store of each kind, closed after the test."""
    opened = open_event_store(store_settings)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> EventStoreSettings:
    """Settings of a fresh SQLite store under the test's own home."""
    return EventStoreSettings(name="executor", home=tmp_path)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A real nats-server from the wheel, JetStream on, on a free loopback port."""
    server = NatsServer(NatsServerSettings(store_dir=tmp_path / "nats"))
    server.start()
    yield server
    server.stop()
