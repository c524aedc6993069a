"""PostgreSQL for tests that start whole services: a fresh database per test, and unique table
prefixes for tests that open the stores themselves (other tests share the server)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tests.integration.conftest import postgres_url


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new, empty database `rc_<uuid hex>` on the test server, dropped afterwards
    (failing, not skipping, without PostgreSQL when RUSTCHAIN_REQUIRE_POSTGRES=1)."""
    server = postgres_url()
    name = f"rc_{uuid.uuid4().hex}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def table_prefix() -> str:
    """A table prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:12]}"


def drop_tables(url: str, prefix: str, *suffixes: str) -> None:
    """Drop a test's `<prefix>_<suffix>` tables."""
    with psycopg.connect(url, autocommit=True) as connection:
        for suffix in suffixes:
            connection.execute(f"DROP TABLE IF EXISTS {prefix}_{suffix}")
