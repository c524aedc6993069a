"""`rustchain status` names the replica that holds a mission's lease, or says why none does."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from rustchain.executor.lease_owner import describe_owner, owner_message
from rustchain.platform.storage.lease_fence import Lease
from rustchain.platform.storage.mission_leases import LeaseView, ReplicaSettings

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


class FakeLeases:
    """Leases whose one row is given."""

    def __init__(self, view: LeaseView | None, shared: bool = True) -> None:
        self.view = view
        self.shared = shared
        self.replica = ReplicaSettings("executor-1")

    def take(self, tenant: str, mission_id: str) -> Lease | None:
        raise NotImplementedError

    def claim(self, limit: int) -> list[Lease]:
        raise NotImplementedError

    def renew(self, leases: Iterable[Lease]) -> set[Lease]:
        raise NotImplementedError

    def release(self, lease: Lease) -> None:
        raise NotImplementedError

    def close(self, lease: Lease) -> None:
        raise NotImplementedError

    def adopt(self, missions: Iterable[tuple[str, str]]) -> None:
        raise NotImplementedError

    def owner_of(self, tenant: str, mission_id: str) -> LeaseView | None:
        return self.view


def _line(view: LeaseView | None, shared: bool = True, finished: bool = False) -> str:
    return describe_owner(owner_message(FakeLeases(view, shared), "acme", "m1", NOW), finished)


def test_a_held_lease_names_its_replica_epoch_and_expiry() -> None:
    view = LeaseView("executor-2", 3, NOW + timedelta(seconds=4))
    assert _line(view) == "executor: executor-2 (epoch 3, lease until 2026-12-06T12:00:04+00:00)"
    message = owner_message(FakeLeases(view), "acme", "m1", NOW)
    assert (message.replica, message.answered_by, message.expired) == (
        "executor-2",
        "executor-1",
        False,
    )


def test_an_expired_lease_says_another_replica_takes_it_over() -> None:
    line = _line(LeaseView("executor-2", 3, NOW - timedelta(seconds=1)))
    assert line.startswith("executor: executor-2's lease expired")
    assert "another replica takes it over" in line


def test_a_finished_mission_and_a_free_lease_are_told_apart() -> None:
    assert _line(LeaseView(None, 4, NOW, finished=True), finished=True) == (
        "executor: finished (lease closed at epoch 4)"
    )
    assert _line(LeaseView(None, 1, NOW)) == (
        "executor: waiting for a replica to claim it (no lease holder)"
    )


def test_one_executor_on_sqlite_is_this_executor() -> None:
    assert _line(None, shared=False) == (
        "executor: this executor (one executor drives an SQLite store)"
    )
