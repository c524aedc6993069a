"""An executor replica's settings, and the one-process leases of an executor on SQLite."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import pytest

from rustchain.bootstrap.executor import build_executor
from rustchain.executor.driver import MissionDriver
from rustchain.platform.storage.event_store import in_memory_event_store
from rustchain.platform.storage.lease_fence import FencedWrite, Lease, lease_lost
from rustchain.platform.storage.mission_leases import (
    DEFAULT_CAPACITY,
    DEFAULT_LEASE_SECONDS,
    LocalMissionLeases,
    ReplicaSettingError,
    ReplicaSettings,
    describe_leases,
)


def test_a_replica_is_named_by_its_host_and_pid_unless_told() -> None:
    replica = ReplicaSettings.from_environ({})
    assert replica.owner == f"{socket.gethostname()}-{os.getpid()}"
    assert (replica.lease_seconds, replica.capacity) == (DEFAULT_LEASE_SECONDS, DEFAULT_CAPACITY)
    told = ReplicaSettings.from_environ(
        {
            "RUSTCHAIN_EXECUTOR_ID": "executor-2",
            "RUSTCHAIN_LEASE_SECONDS": "1.5",
            "RUSTCHAIN_EXECUTOR_CAPACITY": "7",
        }
    )
    assert told == ReplicaSettings("executor-2", 1.5, 7)
    assert told.heartbeat_seconds == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RUSTCHAIN_LEASE_SECONDS", "soon", "RUSTCHAIN_LEASE_SECONDS expects a number of seconds"),
        ("RUSTCHAIN_LEASE_SECONDS", "0.01", "RUSTCHAIN_LEASE_SECONDS must be at least 0.2 s"),
        ("RUSTCHAIN_EXECUTOR_CAPACITY", "1.5", "RUSTCHAIN_EXECUTOR_CAPACITY expects a whole"),
        ("RUSTCHAIN_EXECUTOR_CAPACITY", "0", "RUSTCHAIN_EXECUTOR_CAPACITY must be at least 1"),
        ("RUSTCHAIN_EXECUTOR_ID", "a\nb", "RUSTCHAIN_EXECUTOR_ID must be at most 200 printable"),
    ],
)
def test_a_bad_replica_setting_is_one_line_naming_it(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ReplicaSettingError, match=message) as refused:
        ReplicaSettings.from_environ({variable: value})
    assert "\n" not in str(refused.value)


def test_one_process_holds_a_mission_once_until_it_lets_it_go() -> None:
    leases = LocalMissionLeases(ReplicaSettings("solo"))
    lease = leases.take("acme", "m1")
    assert lease == Lease("acme", "m1", "solo", 0)
    assert leases.take("acme", "m1") is None
    assert leases.renew([lease]) == {lease}
    assert leases.claim(10) == []
    view = leases.owner_of("acme", "m1")
    assert view is not None and view.owner == "solo"
    leases.close(lease)
    assert leases.owner_of("acme", "m1") is None
    assert leases.take("acme", "m1") == lease


def test_an_executor_on_sqlite_says_it_is_the_only_one() -> None:
    solo = describe_leases(LocalMissionLeases(ReplicaSettings("solo")))
    assert solo.startswith("leases: one executor (SQLite)")
    assert "RUSTCHAIN_DATABASE_URL" in solo


def test_a_refused_append_names_the_mission_and_the_lease_it_held() -> None:
    error = lease_lost(FencedWrite(Lease("acme", "m1", "executor-1", 3)))
    assert str(error) == (
        "the lease on mission 'm1' of tenant 'acme' is no longer held by 'executor-1' at"
        " epoch 3 (it expired or another executor took it over): nothing was written"
    )


def test_an_executor_on_a_store_of_its_own_leases_in_process_up_to_its_capacity() -> None:
    with tempfile.TemporaryDirectory(prefix="rustchain-replica-") as folder:
        application = build_executor({"RUSTCHAIN_HOME": str(Path(folder))}, in_memory_event_store())
    driver = MissionDriver(application)
    assert not driver.leases.shared
    assert driver.room == DEFAULT_CAPACITY
