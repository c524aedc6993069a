"""Two relays on one PostgreSQL store: one active, one on standby that takes over when it dies."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from rustchain.platform.nats.relay import DEFAULT_READER
from rustchain.platform.nats.relay_election import (
    ElectionSettings,
    run_when_elected,
)
from rustchain.platform.nats.server import NatsServer
from rustchain.platform.storage.advisory_lock import PostgresAdvisoryLock, advisory_key
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from tests.conditions import wait_until, wait_until_sync
from tests.integration.conftest import postgres_url
from tests.integration.event_helpers import (
    append_in_batches,
    assert_stream_matches_store,
    many_drafts,
    stream_count,
    stream_messages,
)

pytestmark = pytest.mark.postgres
REPO = Path(__file__).resolve().parents[2]
MISSIONS = [f"m{n}" for n in range(10)]
ACTIVE = "active: this process relays the store's events"
STANDBY = "standby: another relay is active"


@pytest.fixture
def pg_settings(tmp_path: Path) -> Iterator[EventStoreSettings]:
    """A PostgreSQL store whose tables are this test's alone, dropped at the end."""
    url = postgres_url()
    name = f"t{uuid.uuid4().hex[:12]}"
    yield EventStoreSettings(name=name, home=tmp_path, database_url=url)
    with psycopg.connect(url, autocommit=True) as connection:
        for table in ("events", "tracking", "checkpoints", "artifacts"):
            connection.execute(f"DROP TABLE IF EXISTS {name}_{table}")


class RelayProcess:
    """`rustchain events relay` in a process of its own, its stderr in a file."""

    def __init__(self, settings: EventStoreSettings, url: str, label: str) -> None:
        assert settings.database_url is not None
        self.log = settings.home / f"relay-{label}.log"
        environ = {
            **os.environ,
            "PYTHONPATH": str(REPO / "services"),
            "RUSTCHAIN_HOME": str(settings.home),
            "RUSTCHAIN_DATABASE_URL": settings.database_url,
            "RUSTCHAIN_RELAY_STANDBY_SECONDS": "0.1",
            "RUSTCHAIN_LOG_FORMAT": "text",
        }
        self.environ = environ
        self.command = [sys.executable, "-m", "rustchain", "events", "relay"]
        self.command += ["--store", settings.name, "--nats-url", url]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, env=environ, stdout=subprocess.PIPE, stderr=log, text=True
            )

    def said(self, words: str) -> bool:
        return words in self.log.read_text()

    def end(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


def test_the_standby_relay_takes_over_when_the_active_one_is_killed_and_relays_each_event_once(
    nats_server: NatsServer, pg_settings: EventStoreSettings
) -> None:
    store = open_event_store(pg_settings)
    drafts = many_drafts(10_000)
    append_in_batches(store, drafts[:3000])
    first = RelayProcess(pg_settings, nats_server.url, "first")
    second: RelayProcess | None = None
    try:
        wait_until_sync(lambda: first.said(ACTIVE), 30, "the first relay is active")
        second = RelayProcess(pg_settings, nats_server.url, "second")
        wait_until_sync(lambda: second.said(STANDBY), 30, "the second relay stands by")

        async def count() -> int:
            return await stream_count(nats_server.url, "acme")

        # Events keep coming while the active relay works; it is killed in the middle of them.
        for start in range(3000, 7000, 1000):
            append_in_batches(store, drafts[start : start + 1000])
        wait_until_sync(lambda: asyncio.run(count()) >= 5000, 60, "5000 events are relayed")
        assert not second.said(ACTIVE), "two relays were active at once"
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        append_in_batches(store, drafts[7000:])
        wait_until_sync(lambda: second.said(ACTIVE), 30, "the standby takes over")
        last = store.last_position()
        wait_until_sync(
            lambda: store.tracked_position(DEFAULT_READER) == last, 60, "the relay catches up"
        )
        # A catch-up run beside the active relay waits for it rather than publishing beside it.
        append_in_batches(store, many_drafts(5, missions=1, tenants=("globex",)))
        catch_up = subprocess.run(
            [*first.command, "--until-caught-up", "--timeout", "30"],
            env=first.environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert catch_up.returncode == 0, catch_up.stderr
        assert f"caught up by the active relay, position {last + 5}" in catch_up.stdout
        second.process.send_signal(signal.SIGTERM)
        output, _ = second.process.communicate(timeout=30)

        assert second.process.returncode == 0
        relayed = int(output.split(f"{pg_settings.name}: relayed ")[1].split()[0])
        # It took over from the killed relay's tracked position, not from the start.
        assert 3000 <= relayed < 10_000
        messages = asyncio.run(stream_messages(nats_server.url, "acme"))
        assert len(messages) == 10_000
        assert_stream_matches_store(messages, store, "acme", MISSIONS)
    finally:
        first.end()
        if second is not None:
            second.end()
        store.close()


def test_a_lock_is_held_by_one_session_and_freed_when_it_ends() -> None:
    url = postgres_url()
    key = advisory_key("relay", f"t{uuid.uuid4().hex[:12]}")

    async def contend() -> None:
        first, second = PostgresAdvisoryLock(url, key), PostgresAdvisoryLock(url, key)
        assert await first.try_acquire()
        assert not await second.try_acquire()
        assert await first.held() and not await second.held()
        await first.release()
        assert await second.try_acquire()
        await second.release()

    asyncio.run(contend())


def test_a_standby_never_works_and_a_holder_that_loses_its_lock_stops_working() -> None:
    url = postgres_url()
    key = advisory_key("relay", f"t{uuid.uuid4().hex[:12]}")
    lines: list[str] = []

    async def elect() -> None:
        holder = PostgresAdvisoryLock(url, key)
        assert await holder.try_acquire()
        stop = asyncio.Event()
        working = asyncio.Event()
        stopped: list[bool] = []

        async def work(active: asyncio.Event) -> None:
            working.set()
            await active.wait()
            stopped.append(True)

        settings = ElectionSettings(period=0.05)
        standby = asyncio.ensure_future(
            run_when_elected(PostgresAdvisoryLock(url, key), work, stop, settings, lines.append)
        )
        await wait_until(lambda: any("standby" in line for line in lines), 10, "it stands by")
        assert not working.is_set()
        # The holder's session ends as a crashed process's would.
        await holder.release()
        await wait_until(working.is_set, 10, "the standby works once the lock is free")
        # Its session is ended from outside (a database failover, a partition): it stops work.
        working.clear()
        _terminate_holder(url, key)
        await wait_until(lambda: stopped == [True], 10, "the work stops with the lost lock")
        await wait_until(working.is_set, 10, "it is elected again once it reconnects")
        stop.set()
        await standby

    asyncio.run(elect())
    lost = "lost the store's lock (its database session ended); standing by"
    assert [line.split(":")[0] for line in lines] == ["standby", "active", lost, "active"]


def _terminate_holder(url: str, key: int) -> None:
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    with psycopg.connect(url, autocommit=True) as connection:
        ended = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
            " AND granted AND classid::bigint = %s AND objid::bigint = %s",
            (unsigned >> 32, unsigned & 0xFFFF_FFFF),
        ).fetchall()
    assert ended == [(True,)]
