"""Processes that open their PostgreSQL stores on a fresh database at the same moment (several
executor pods, `rustchain up` starting its services together) all get their tables."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from tests.integration.replica_deployment import fresh_database

pytestmark = pytest.mark.postgres
OPENINGS = 6


def test_stores_opened_at_once_on_a_fresh_database_all_get_their_tables(tmp_path: Path) -> None:
    with fresh_database() as url:

        def open_and_close(number: int) -> int:
            name = ("executor", "verifier", "trainer")[number % 3]
            store = open_event_store(EventStoreSettings(name, tmp_path, database_url=url))
            try:
                return len(store.mission_events("acme", "m1"))
            finally:
                store.close()

        with ThreadPoolExecutor(OPENINGS) as pool:
            assert list(pool.map(open_and_close, range(OPENINGS))) == [0] * OPENINGS
