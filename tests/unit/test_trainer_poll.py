"""The trainer's poll takes an empty wait as nothing to do, whichever TimeoutError nats-py
raises (its own, or asyncio's when the wait runs out between its two pull requests)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import nats.errors
import pytest

from rustchain.trainer.consumer import TrajectoryConsumer
from rustchain.trainer.trajectory_store import SqliteTrajectoryStore


class FakeSubscription:
    """A pull subscription whose fetch times out the way it was told to."""

    def __init__(self, timeout: BaseException) -> None:
        self.timeout = timeout
        self.unsubscribed = False

    async def fetch(self, batch: int, timeout: float) -> list[Any]:
        raise self.timeout

    async def unsubscribe(self) -> None:
        self.unsubscribed = True


class FakeJetStream:
    """Hands out one fake subscription."""

    def __init__(self, subscription: FakeSubscription) -> None:
        self.subscription = subscription

    async def pull_subscribe(self, subject: str, **options: Any) -> FakeSubscription:
        return self.subscription


@pytest.mark.parametrize(
    "timeout", [nats.errors.TimeoutError(), TimeoutError()], ids=["nats", "builtin"]
)
def test_a_poll_that_finds_nothing_records_nothing_and_lets_go_of_its_inbox(
    timeout: BaseException, tmp_path: Path
) -> None:
    subscription = FakeSubscription(timeout)
    store = SqliteTrajectoryStore(tmp_path / "trainer.sqlite3")
    consumer = TrajectoryConsumer(FakeJetStream(subscription), store)  # type: ignore[arg-type]

    assert asyncio.run(consumer.poll("acme", wait=0.2)) == 0
    assert subscription.unsubscribed
    store.close()
