"""Three executor processes on one PostgreSQL database (`rustchain up --executors 3`): one is
SIGKILLed mid-run, another SIGSTOPped past its lease and let go on later; or one is cut off from
PostgreSQL by a proxy and healed. Every mission ends, no step's effect happens twice, the
late writes of the replica that lost its leases are refused by the fence, and every event chain
is whole (`rustchain audit verify`). And `rustchain run`'s watch carries on from another replica
when the one streaming to it dies."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import psycopg
import pytest

from rustchain.platform.deployment.supervisor import wait_serving
from rustchain.platform.nats.server import free_port
from tests.conditions import wait_until_sync
from tests.integration.replica_deployment import (
    TENANT,
    UpDeployment,
    all_finished,
    audit_verify,
    check_each_effect_once,
    fresh_database,
    held_by,
    leases,
    ledger_mission,
    process_environ,
    stop_process,
    submit_missions,
    summaries,
)
from tests.integration.tcp_proxy import tcp_proxy

pytestmark = pytest.mark.postgres
MISSIONS = 30
LEASE_SECONDS = "2"
RUN_TIMEOUT_SECONDS = 90.0
FENCED = "is no longer held by"
"""What the fence's refusal says (LeaseLostError), in the replica's log."""
MISSION = ledger_mission(steps=3, pause_seconds=1.0)


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def _finish(deployment: UpDeployment, missions: list[str]) -> None:
    """Wait for every mission to end; check effects, fence and chains."""
    wait_until_sync(
        lambda: all_finished(deployment.database_url, missions),
        RUN_TIMEOUT_SECONDS,
        "every mission ended",
    )
    found = asyncio.run(summaries(",".join(deployment.replicas()), deployment.metadata(), missions))
    statuses = check_each_effect_once(found)
    assert sum(statuses.values()) == MISSIONS
    verified = audit_verify(deployment.home, deployment.database_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"of {MISSIONS} mission(s); every chain whole" in verified.stdout


def _status(deployment: UpDeployment, mission: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "rustchain", "status", mission, "--tenant", TENANT],
        env=deployment.environ(RUSTCHAIN_TOKEN=deployment.token),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _fence_check_waits(database: str, pid: int) -> bool:
    """True while a connection of process `pid` waits to run an append's lease check."""
    port = urlsplit(database).port or 5432
    connections = psutil.Process(pid).net_connections(kind="tcp")
    ours = {c.laddr.port for c in connections if c.raddr and c.raddr.port == port}
    with psycopg.connect(database) as connection:
        waiting = connection.execute(
            "SELECT client_port FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND (query LIKE '%FOR SHARE%' OR query LIKE '%RETURNING epoch%')"
        ).fetchall()
    return any(client_port in ours for (client_port,) in waiting)


def test_killed_and_paused_replicas_lose_no_mission_and_repeat_no_effect(
    tmp_path: Path, database: str
) -> None:
    deployment = UpDeployment(
        tmp_path / "home", database, 3, {"RUSTCHAIN_LEASE_SECONDS": LEASE_SECONDS}
    )
    try:
        with deployment.explained():
            deployment.start()
            missions = asyncio.run(submit_missions(deployment, MISSION, MISSIONS))
            wait_until_sync(
                lambda: all(held_by(database, f"executor-{n}") for n in (1, 2)),
                RUN_TIMEOUT_SECONDS,
                "executor-1 and executor-2 each drive a mission",
            )
            pids = deployment.executor_pids()
            os.kill(pids["executor-1"], signal.SIGKILL)
            os.kill(pids["executor-2"], signal.SIGSTOP)
            paused = held_by(database, "executor-2")
            assert paused, "executor-2 held missions when it was paused"

            def taken_over() -> bool:
                now = leases(database)
                return all(
                    now[m].finished or (now[m].owner != "executor-2" and now[m].epoch > row.epoch)
                    for m, row in paused.items()
                )

            wait_until_sync(
                taken_over, RUN_TIMEOUT_SECONDS, "executor-2's missions were taken over"
            )
            with psycopg.connect(database) as busy:
                # The leases are busy as executor-2 wakes: its heartbeat cannot learn that its
                # leases are gone before its drives, whose steps ended while it was paused, try to
                # append their results; those appends are the late writes the fence must refuse.
                busy.execute("LOCK TABLE executor_leases IN EXCLUSIVE MODE")
                os.kill(pids["executor-2"], signal.SIGCONT)
                wait_until_sync(
                    lambda: _fence_check_waits(database, pids["executor-2"]),
                    RUN_TIMEOUT_SECONDS,
                    "a late append of executor-2 reached the lease check",
                )
            # `rustchain status` names the lease holder (it may have finished since).
            shown = _status(deployment, next(iter(paused)))
            assert re.search(r"executor: (executor-\d \(epoch \d+, lease until |finished)", shown)
            _finish(deployment, missions)
            assert "executor: finished (lease closed at epoch" in _status(deployment, missions[0])

            # The paused replica's drives found their leases gone: their appends were refused.
            assert FENCED in deployment.replica_log("executor-2")
            supervisor = deployment.log_path.read_text()
            assert "executor-1 exited with code -9" in supervisor
            wait_until_sync(
                lambda: "executor-1 restarted" in deployment.log_path.read_text(),
                RUN_TIMEOUT_SECONDS,
                "the supervisor restarted executor-1",
            )
    finally:
        deployment.stop()


def test_a_replica_cut_off_from_postgresql_is_fenced_when_it_comes_back(
    tmp_path: Path, database: str
) -> None:
    # Two replicas under `up` take 8 missions each; the third, whose database connections go
    # through the proxy, claims the rest.
    settings = {"RUSTCHAIN_LEASE_SECONDS": LEASE_SECONDS, "RUSTCHAIN_EXECUTOR_CAPACITY": "8"}
    deployment = UpDeployment(tmp_path / "home", database, 2, settings)
    target = urlsplit(database)
    with tcp_proxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
        proxied = database.replace(f":{target.port or 5432}/", f":{proxy.port}/")
        third: subprocess.Popen[bytes] | None = None
        try:
            with deployment.explained():
                deployment.start()
                port = str(free_port())
                endpoint = f"127.0.0.1:{port}"
                environ = {
                    **process_environ(deployment.home, proxied),
                    "RUSTCHAIN_EXECUTOR_ID": "executor-3",
                    "RUSTCHAIN_LEASE_SECONDS": LEASE_SECONDS,
                    "RUSTCHAIN_EXECUTOR_CAPACITY": str(MISSIONS),
                    "RUSTCHAIN_TOKEN": deployment.token,
                    "NATS_URL": str(deployment.endpoints["nats_url"]),
                }
                log_path = tmp_path / "executor-3.log"
                with log_path.open("wb") as log:
                    third = subprocess.Popen(
                        [sys.executable, "-m", "rustchain", "serve", "executor", "--port", port],
                        env=environ,
                        stdout=log,
                        stderr=log,
                    )
                wait_serving(endpoint, "executor-3")
                missions = asyncio.run(submit_missions(deployment, MISSION, MISSIONS))
                wait_until_sync(
                    lambda: len(held_by(database, "executor-3")) > 0,
                    RUN_TIMEOUT_SECONDS,
                    "executor-3 claimed missions",
                )
                cut_off = held_by(database, "executor-3")
                proxy.blackhole()

                def taken_over() -> bool:
                    now = leases(database)
                    return all(
                        now[m].finished or (now[m].owner != "executor-3" and now[m].epoch > r.epoch)
                        for m, r in cut_off.items()
                    )

                wait_until_sync(taken_over, RUN_TIMEOUT_SECONDS, "executor-3's missions were taken")
                proxy.heal()
                _finish(deployment, missions)
                wait_until_sync(
                    lambda: FENCED in log_path.read_text(),
                    RUN_TIMEOUT_SECONDS,
                    "executor-3 logged a write refused by the fence",
                )
        finally:
            proxy.heal()
            if third is not None:
                stop_process(third)
            deployment.stop()


def test_a_watch_goes_on_from_another_replica_when_its_replica_dies(
    tmp_path: Path, database: str
) -> None:
    # Both replicas are killed in turn (the supervisor restarts each): whichever one carries the
    # CLI's watch stream, one of the kills breaks it, and the watch carries on from the other.
    deployment = UpDeployment(
        tmp_path / "home", database, 2, {"RUSTCHAIN_LEASE_SECONDS": LEASE_SECONDS}
    )
    mission = tmp_path / "slow.yaml"
    mission.write_text(ledger_mission(steps=4, pause_seconds=1.5, idempotent=True))
    output = tmp_path / "run.out"
    run: subprocess.Popen[bytes] | None = None
    try:
        with deployment.explained():
            deployment.start()
            with output.open("wb") as sink:
                run = subprocess.Popen(
                    [sys.executable, "-m", "rustchain", "run", str(mission), "--tenant", TENANT],
                    env=deployment.environ(),
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            wait_until_sync(
                lambda: any(not row.finished for row in leases(database).values()),
                RUN_TIMEOUT_SECONDS,
                "the mission runs",
            )
            for number, replica in enumerate(("executor-1", "executor-2"), start=1):
                os.kill(deployment.executor_pids()[replica], signal.SIGKILL)
                wait_until_sync(
                    lambda r=replica, n=number: (
                        deployment.log_path.read_text().count("restarted") >= n
                        and r in deployment.executor_pids()
                    ),
                    RUN_TIMEOUT_SECONDS,
                    f"{replica} restarted",
                )
            assert run.wait(RUN_TIMEOUT_SECONDS) == 0, output.read_text()
            shown = " ".join(output.read_text().split())
            assert "executor unreachable; waiting for it" in shown
            assert "mission succeeded" in shown
    finally:
        if run is not None:
            stop_process(run)
        deployment.stop()
