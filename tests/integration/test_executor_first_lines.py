"""What a served executor says about its leases before it serves: alone on SQLite, shared on
PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from rustchain.bootstrap.services import ServeError, host_executor
from tests.integration.conftest import postgres_url


def _lines(environ: dict[str, str]) -> list[str]:
    hosted = host_executor(environ, {})
    try:
        return hosted.lines
    finally:
        asyncio.run(hosted.close())


def test_an_executor_on_sqlite_says_it_is_the_only_one(tmp_path: Path) -> None:
    lines = _lines({"RUSTCHAIN_HOME": str(tmp_path), "RUSTCHAIN_SANDBOX": "none"})
    assert lines[-1].startswith("leases: one executor (SQLite): this process drives every mission")


@pytest.fixture
def own_database() -> Iterator[str]:
    """The URL of a database of this test's own (the executor's tables have fixed names)."""
    url = postgres_url()
    name = f"rc_{uuid.uuid4().hex}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.postgres
def test_an_executor_on_postgresql_names_itself_and_its_lease(
    own_database: str, tmp_path: Path
) -> None:
    environ = {
        "RUSTCHAIN_HOME": str(tmp_path),
        "RUSTCHAIN_SANDBOX": "none",
        "RUSTCHAIN_DATABASE_URL": own_database,
        "RUSTCHAIN_EXECUTOR_ID": "executor-7",
        "RUSTCHAIN_LEASE_SECONDS": "3",
    }
    assert _lines(environ)[-1] == (
        "leases: executor 'executor-7' shares PostgreSQL with any other replicas"
        " (lease 3 s, capacity 200 missions)"
    )


def test_a_bad_lease_setting_stops_the_executor_with_one_line(tmp_path: Path) -> None:
    environ = {"RUSTCHAIN_HOME": str(tmp_path), "RUSTCHAIN_LEASE_SECONDS": "forever"}
    with pytest.raises(ServeError, match=r"^RUSTCHAIN_LEASE_SECONDS expects a number of seconds"):
        host_executor(environ, {})
