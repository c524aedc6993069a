"""The trainer's consumer against a real nats-server: one trajectory per finished mission, once;
with its store on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rustchain.domain.events.envelope import EventDraft
from rustchain.domain.events.names import stream_name
from rustchain.platform.nats.jetstream import connect
from rustchain.platform.nats.relay import JetStreamRelay
from rustchain.platform.nats.server import NatsServer
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.trainer.consumer import DURABLE, TrajectoryConsumer, finished_subject
from rustchain.trainer.postgres_trajectory_store import PostgresTrajectoryStore
from rustchain.trainer.trajectory_store import SqliteTrajectoryStore, TrajectoryStore
from tests.integration.conftest import postgres_url
from tests.integration.postgres_databases import drop_tables, table_prefix
from tests.integration.trainer_process import finish_missions
from tests.unit.compile_helpers import plan_of

MISSION = """\
version: "1.0"
name: trajectory
config: {fail_fast: false}
variables: {who: world}
steps:
  - {id: greet, name: Greet, step_type: noop, parameters: {message: "hello {who}"}}
  - id: write
    name: Write
    step_type: create_file
    depends_on: [greet]
    parameters: {path: out.txt, content: "{greet.output}"}
  - id: broken
    name: Broken
    step_type: read_file
    parameters: {path: missing.txt}
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def trajectories(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TrajectoryStore]:
    """A fresh trajectory store of each kind (PostgreSQL: tables of this test), closed after."""
    if request.param == "sqlite":
        store: TrajectoryStore = SqliteTrajectoryStore(tmp_path / "trainer.sqlite3")
        yield store
        store.close()
        return
    url, prefix = postgres_url(), table_prefix()
    store = PostgresTrajectoryStore(url, prefix)
    yield store
    store.close()
    drop_tables(url, prefix, "trajectories", "deliveries")


def _run_missions(home: Path, nats_url: str, count: int) -> list[str]:
    return finish_missions(home, nats_url, MISSION, count, variables={"who": "Ada"})


def test_each_finished_mission_becomes_one_trajectory(
    tmp_path: Path, nats_server: NatsServer, trajectories: TrajectoryStore
) -> None:
    missions = _run_missions(tmp_path, nats_server.url, 2)

    async def consume() -> tuple[list[str], int, int]:
        client = await connect(nats_server.url)
        consumer = TrajectoryConsumer(client.jetstream(), trajectories)
        tenants = await consumer.tenants()
        first = await consumer.poll("acme")
        again = await consumer.poll("acme", wait=0.5)
        await client.close()
        return tenants, first, again

    tenants, first, again = asyncio.run(consume())

    assert tenants == ["acme"]
    assert (first, again) == (2, 0)
    stored = trajectories.trajectories("acme")
    assert sorted(t.mission_id for t in stored) == sorted(missions)
    trajectory = stored[0]
    assert trajectory.outcome == "failed"
    steps = {s.step_id: s for s in trajectory.steps}
    assert steps["greet"].output == "hello Ada"
    assert steps["write"].inputs == {"path": "out.txt", "content": "hello Ada"}
    assert steps["write"].status == "succeeded"
    assert steps["broken"].status == "failed"
    assert "not a file" in (steps["broken"].error or "")
    assert all(s.duration_ms is not None and s.duration_ms >= 0 for s in trajectory.steps)


def test_a_message_redelivered_after_a_crash_is_not_recorded_twice(
    tmp_path: Path, nats_server: NatsServer, trajectories: TrajectoryStore
) -> None:
    _run_missions(tmp_path, nats_server.url, 1)

    async def crash_then_resume() -> int:
        client = await connect(nats_server.url)
        js = client.jetstream()
        consumer = TrajectoryConsumer(js, trajectories)
        subscription = await js.pull_subscribe(
            finished_subject("acme"), durable=DURABLE, stream=stream_name("acme")
        )
        [message] = await subscription.fetch(1, timeout=5)
        # Saved, then the process dies before the ack: JetStream delivers the message again.
        await consumer.record(
            "acme", stream_name("acme"), message.metadata.sequence.stream, message.data
        )
        await message.nak()
        recorded = await consumer.poll("acme")
        await client.close()
        return recorded

    assert asyncio.run(crash_then_resume()) == 0
    assert len(trajectories.trajectories("acme")) == 1


def test_a_mission_with_a_fact_it_cannot_read_is_skipped_and_the_rest_go_on(
    tmp_path: Path,
    nats_server: NatsServer,
    trajectories: TrajectoryStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = open_event_store(EventStoreSettings(name="executor", home=tmp_path))
    plan = json.loads(plan_of(MISSION).to_json())
    started = {"plan": plan, "plan_hash": "h" * 64, "variables": {}, "workspace": "/w"}
    records = [
        ("MissionStarted", 1, started),
        ("StepStarted", 9, {"step_id": "greet", "attempt": 1}),
        ("MissionFinished", 1, {"outcome": "failed"}),
    ]
    store.append(
        [
            EventDraft(
                id=str(uuid.uuid4()),
                tenant="acme",
                mission_id="m-newer",
                service="executor",
                aggregate_id="m-newer",
                aggregate_version=n,
                type=kind,
                version=version,
                occurred_at=datetime(2026, 12, 6, tzinfo=UTC),
                payload=payload,
            )
            for n, (kind, version, payload) in enumerate(records, start=1)
        ]
    )
    asyncio.run(JetStreamRelay(store, nats_server.url).catch_up(timeout=30))
    store.close()
    (good,) = _run_missions(tmp_path, nats_server.url, 1)

    async def consume() -> tuple[int, int]:
        client = await connect(nats_server.url)
        consumer = TrajectoryConsumer(client.jetstream(), trajectories)
        first = await consumer.poll("acme")
        again = await consumer.poll("acme", wait=0.5)
        await client.close()
        return first, again

    with caplog.at_level(logging.WARNING, logger="rustchain.trainer.consumer"):
        assert asyncio.run(consume()) == (1, 0)

    assert [t.mission_id for t in trajectories.trajectories("acme")] == [good]
    (warning,) = [r.getMessage() for r in caplog.records if "m-newer" in r.getMessage()]
    assert "StepStarted v9, newer than this code knows" in warning


def test_polling_keeps_no_subscription_behind(
    tmp_path: Path, nats_server: NatsServer, trajectories: TrajectoryStore
) -> None:
    _run_missions(tmp_path, nats_server.url, 1)

    async def subscriptions_after_polls() -> tuple[int, int]:
        client = await connect(nats_server.url)
        consumer = TrajectoryConsumer(client.jetstream(), trajectories)
        await consumer.poll("acme", wait=0.05)
        after_one = len(client._subs)  # nats-py offers no public count of a client's subs
        for _ in range(5):
            await consumer.poll("acme", wait=0.05)
        after_six = len(client._subs)
        await client.close()
        return after_one, after_six

    after_one, after_six = asyncio.run(subscriptions_after_polls())
    assert after_six == after_one
