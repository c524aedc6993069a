"""Trainer replicas on PostgreSQL: two trainer processes share the durable JetStream consumer and
one database; with one of them SIGKILLed mid-way, each finished mission still yields exactly one
trajectory (the messages it held are redelivered to the other, and none is recorded twice), and
each tenant's trajectories stay its own."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from rustchain.domain.runs.trajectory import Trajectory
from rustchain.platform.nats.server import NatsServer
from rustchain.trainer.postgres_trajectory_store import PostgresTrajectoryStore
from tests.conditions import wait_until_sync
from tests.integration.conftest import postgres_url
from tests.integration.postgres_databases import drop_tables, table_prefix
from tests.integration.trainer_process import finish_missions, start_trainer
from tests.paths import REPO

pytestmark = pytest.mark.postgres

MISSION = """\
version: "1.0"
name: replicas
steps:
  - {id: one, name: One, step_type: noop, parameters: {message: "first"}}
  - {id: two, name: Two, step_type: noop, depends_on: [one], parameters: {message: "{one}"}}
"""
ACK_WAIT_SECONDS = 2.0


@pytest.fixture
def tables() -> Iterator[tuple[str, str]]:
    """(database URL, table prefix) of this test's trajectory tables, dropped afterwards."""
    url, prefix = postgres_url(), table_prefix()
    yield url, prefix
    drop_tables(url, prefix, "trajectories", "deliveries")


@pytest.fixture
def trainers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Trainer processes started by a test, killed if still running when it ends."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def _start_trainer(nats_url: str, url: str, prefix: str) -> subprocess.Popen[bytes]:
    return start_trainer(nats_url, url, prefix, ACK_WAIT_SECONDS, REPO)


def _finish_missions(home: Path, nats_url: str, count: int, tenant: str = "acme") -> list[str]:
    return finish_missions(home, nats_url, MISSION, count, tenant)


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def test_two_trainers_record_each_finished_mission_once_when_one_is_killed(
    tmp_path: Path,
    nats_server: NatsServer,
    tables: tuple[str, str],
    trainers: list[subprocess.Popen[bytes]],
) -> None:
    url, prefix = tables
    missions = _finish_missions(tmp_path, nats_server.url, 40)
    PostgresTrajectoryStore(url, prefix).close()  # its tables, for the counts below
    first = _start_trainer(nats_server.url, url, prefix)
    trainers.append(first)
    trajectories = f"{prefix}_trajectories"
    # The first replica holds the whole batch it fetched; kill it while it works through it.
    wait_until_sync(lambda: _count(url, trajectories) >= 5, 30, "the first trainer recorded some")
    trainers.append(_start_trainer(nats_server.url, url, prefix))
    first.kill()
    first.wait()
    recorded_by_the_first = _count(url, trajectories)
    assert recorded_by_the_first < len(missions), "the first trainer finished before its kill"

    # Missions that finish after the kill reach the survivor too, another tenant's as well.
    missions += _finish_missions(tmp_path, nats_server.url, 5)
    theirs = _finish_missions(tmp_path, nats_server.url, 5, tenant="globex")
    total = len(missions) + len(theirs)
    wait_until_sync(
        lambda: _count(url, trajectories) >= total, 30, f"{total} trajectories were recorded"
    )

    store = PostgresTrajectoryStore(url, prefix)
    try:
        ours, others = store.trajectories("acme"), store.trajectories("globex")
        assert store.get("globex", missions[0]) is None
    finally:
        store.close()
    assert sorted(t.mission_id for t in ours) == sorted(missions)
    assert sorted(t.mission_id for t in others) == sorted(theirs)
    assert all(t.outcome == "succeeded" for t in ours + others)
    # One delivery row per message: none processed twice, none left out.
    assert _count(url, f"{prefix}_deliveries") == total


def _trajectory(mission_id: str) -> Trajectory:
    at = datetime(2026, 12, 6, tzinfo=UTC)
    return Trajectory(
        tenant="acme",
        mission_id=mission_id,
        mission_name="m",
        plan_hash="h" * 64,
        outcome="succeeded",
        started_at=at,
        finished_at=at,
        duration_ms=0,
        steps=[],
        outputs={},
    )


def test_replicas_track_each_message_not_a_last_position(tables: tuple[str, str]) -> None:
    url, prefix = tables
    one, other = PostgresTrajectoryStore(url, prefix), PostgresTrajectoryStore(url, prefix)
    try:
        assert one.save(_trajectory("m10"), "trainer", "S", 10)
        # Another replica's message before it is still to do (a last position would skip it).
        assert not other.processed("trainer", "S", 5)
        assert other.save(_trajectory("m5"), "trainer", "S", 5)
        assert one.processed("trainer", "S", 5)
        assert not one.save(_trajectory("m5"), "trainer", "S", 5)
        other.skip("trainer", "S", 7)
        assert one.processed("trainer", "S", 7)
        assert not one.processed("trainer", "OTHER", 7)

        # Two replicas saving one redelivered message at once: one records it, once.
        results: list[bool] = []
        start = threading.Barrier(2)

        def save(store: PostgresTrajectoryStore) -> None:
            start.wait()
            results.append(store.save(_trajectory("m20"), "trainer", "S", 20))

        threads = [threading.Thread(target=save, args=(s,)) for s in (one, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [False, True]
        assert [t.mission_id for t in one.trajectories("acme")] == ["m10", "m20", "m5"]
        assert one.get("globex", "m10") is None
    finally:
        one.close()
        other.close()
