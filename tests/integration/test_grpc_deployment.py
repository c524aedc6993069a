"""`rustchain up` as a user runs it: every service serves, `rustchain run` uses it, a dead child
is reported and restarted, SIGTERM stops everything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rustchain.generated.rustchain.trainer.v1 import trainer_pb2, trainer_pb2_grpc
from rustchain.platform.nats.server import free_port
from tests.conditions import wait_until_sync
from tests.paths import REPO

UP_TIMEOUT_SECONDS = 60.0
RUN_TIMEOUT_SECONDS = 60.0


def _wait_for(
    condition: Callable[[], bool], what: str, timeout: float = UP_TIMEOUT_SECONDS
) -> None:
    wait_until_sync(condition, timeout, what)


def _serving(endpoint: str) -> bool:
    with grpc.insecure_channel(endpoint) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(service=""), timeout=1.0
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _trajectory(endpoint: str, mission_id: str, home: Path) -> str | None:
    """The trajectory's JSON once the trainer has recorded it (asked with the admin token)."""
    token = (home / "admin.token").read_text().strip()
    with grpc.insecure_channel(endpoint) as channel:
        trainer = trainer_pb2_grpc.TrainerServiceStub(channel)
        try:
            reply = trainer.GetTrajectory(
                trainer_pb2.GetTrajectoryRequest(mission_id=mission_id),
                timeout=2.0,
                metadata=(("authorization", f"Bearer {token}"),),
            )
        except grpc.RpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                return None
            raise
    return str(reply.trajectory_json)


def _children(pid: int) -> dict[str, int]:
    """The supervisor's children by what they run ('serve memory', 'events relay', ...)."""
    found = subprocess.run(
        ["pgrep", "-a", "-P", str(pid)], capture_output=True, text=True, check=False
    )
    children: dict[str, int] = {}
    for line in found.stdout.splitlines():
        child, _, command = line.partition(" ")
        for name in ("planner", "verifier", "executor", "memory", "trainer"):
            if f"serve {name}" in command:
                children[name] = int(child)
        if "nats-server" in command:
            children["nats"] = int(child)
        if "events auth-callout" in command:
            children["nats-auth"] = int(child)
    return children


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    home = tmp_path / "home"
    environ = {**os.environ, "RUSTCHAIN_HOME": str(home)}
    environ.pop("RUSTCHAIN_ENDPOINT", None)
    environ.pop("NATS_URL", None)
    log = (tmp_path / "up.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "rustchain", "up"], env=environ, stdout=log, stderr=log
    )
    try:
        _wait_for((home / "endpoints.json").is_file, "endpoints.json")
        yield process, home
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(UP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def _relayed_events(home: Path, mission_id: str) -> int:
    """How many of a mission's events `rustchain events` reads from JetStream (as the admin)."""
    found = subprocess.run(
        [
            sys.executable,
            "-m",
            "rustchain",
            "events",
            "--tenant",
            "default",
            "--mission",
            mission_id,
        ],
        env={**os.environ, "RUSTCHAIN_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    return len(found.stdout.splitlines()) if found.returncode == 0 else 0


def _run(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "RUSTCHAIN_HOME": str(home), **extra}
    return subprocess.run(
        [sys.executable, "-m", "rustchain", "run", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        cwd=REPO,
        check=False,
    )


def test_up_serves_runs_restarts_and_stops(
    deployment: tuple[subprocess.Popen[bytes], Path], tmp_path: Path
) -> None:
    process, home = deployment
    endpoints = json.loads((home / "endpoints.json").read_text())
    assert endpoints["pid"] == process.pid
    services = endpoints["services"]
    assert set(services) == {"planner", "verifier", "executor", "memory", "trainer"}
    assert all(_serving(endpoint) for endpoint in services.values())

    done = _run(home, "missions/hello.yaml", "--var", "who=Ada")
    assert done.returncode == 0, done.stderr
    shown = " ".join(done.stdout.split())
    assert f"on the deployment at {services['planner']}" in shown
    assert "mission succeeded" in shown

    mission_id = shown.split("(", 1)[1].split(")", 1)[0]
    _wait_for(
        lambda: _trajectory(services["trainer"], mission_id, home), "the mission's trajectory"
    )
    trajectory = json.loads(_trajectory(services["trainer"], mission_id, home) or "{}")
    assert trajectory["outcome"] == "succeeded"
    assert [s["step_id"] for s in trajectory["steps"]] == [
        "write_greeting",
        "read_greeting",
        "say_it",
    ]

    refused = _run(home, "missions/hello.yaml", "--var", "who=R2-D2")
    assert refused.returncode == 1
    assert "must match" in refused.stderr

    second = subprocess.run(
        [sys.executable, "-m", "rustchain", "up"],
        env={**os.environ, "RUSTCHAIN_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    assert second.returncode == 2
    assert f"a deployment already runs on {home} (pid {process.pid})" in second.stderr

    memory = _children(process.pid)["memory"]
    os.kill(memory, signal.SIGKILL)
    log = tmp_path / "up.log"
    _wait_for(lambda: "memory restarted" in log.read_text(), "the memory service's restart")
    assert "memory exited with code -9" in log.read_text()
    _wait_for(lambda: _serving(services["memory"]), "the restarted memory service")
    assert _children(process.pid)["memory"] != memory

    nats = _children(process.pid)["nats"]
    os.kill(nats, signal.SIGKILL)
    _wait_for(lambda: "nats-server restarted" in log.read_text(), "nats-server's restart")
    assert f"nats-server (pid {nats}) died" in log.read_text()
    assert _children(process.pid)["nats"] != nats

    # Without its NATS auth callout no connection is admitted; restarted, everything carries on:
    # a new mission runs and its events reach JetStream through the relays' new connections.
    callout = _children(process.pid)["nats-auth"]
    os.kill(callout, signal.SIGKILL)
    _wait_for(lambda: "nats-auth restarted" in log.read_text(), "the NATS auth callout's restart")
    after = _run(home, "missions/hello.yaml", "--var", "who=Grace")
    assert after.returncode == 0, after.stderr
    second_id = " ".join(after.stdout.split()).split("(", 1)[1].split(")", 1)[0]
    _wait_for(
        lambda: _relayed_events(home, second_id) == 9, "the second mission's events in JetStream"
    )

    process.send_signal(signal.SIGTERM)
    assert process.wait(UP_TIMEOUT_SECONDS) == 0
    assert not (home / "endpoints.json").exists()
    assert _children(process.pid) == {}


def test_run_against_an_unreachable_deployment_is_one_line_and_exit_3(tmp_path: Path) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    pairs = f"planner={nowhere},executor={nowhere}"
    done = _run(tmp_path, "missions/hello.yaml", RUSTCHAIN_ENDPOINT=pairs)
    assert done.returncode == 3
    assert done.stderr.strip().splitlines() == [
        f"rustchain: the planner service at {nowhere} is unreachable (connection failed)"
    ]


SLOW = """
version: "1.0"
name: slow
steps:
  - id: seed
    name: Write a file
    step_type: create_file
    parameters: {path: seed.txt, content: "seed"}
  - id: slow
    name: Follow the file until the timeout
    step_type: command
    depends_on: [seed]
    timeout_seconds: 20
    continue_on_error: true
    parameters: {command: tail, args: ["-f", "seed.txt"]}
  - id: after
    name: Carry on
    step_type: noop
    depends_on: [slow]
    parameters: {message: done}
"""


def test_run_carries_on_through_an_executor_crash(
    deployment: tuple[subprocess.Popen[bytes], Path], tmp_path: Path
) -> None:
    process, home = deployment
    mission = tmp_path / "slow.yaml"
    mission.write_text(SLOW)
    output = tmp_path / "run.out"
    environ = {**os.environ, "RUSTCHAIN_HOME": str(home)}
    with output.open("wb") as sink:
        run = subprocess.Popen(
            [sys.executable, "-m", "rustchain", "run", str(mission)],
            env=environ,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for(lambda: "> slow" in output.read_text(), "the slow step's start")
            os.kill(_children(process.pid)["executor"], signal.SIGKILL)
            assert run.wait(RUN_TIMEOUT_SECONDS) == 0, output.read_text()
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
    shown = " ".join(output.read_text().split())
    assert "executor unreachable; waiting for it" in shown
    assert "interrupted slow" in shown
    assert "ok after" in shown
    assert "mission succeeded" in shown


def test_run_ignores_the_endpoints_of_a_deployment_that_is_gone(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    nowhere = f"127.0.0.1:{free_port()}"
    services = {name: nowhere for name in ("planner", "verifier", "executor", "memory")}
    document = {"services": services, "nats_url": None, "pid": gone.pid}
    (tmp_path / "endpoints.json").write_text(json.dumps(document))
    done = _run(tmp_path, "missions/hello.yaml")
    assert done.returncode == 0, done.stderr
    assert f"ignoring {tmp_path / 'endpoints.json'}" in " ".join(done.stderr.split())
    assert "on the deployment" not in done.stdout


def test_detached_run_prints_the_mission_id_and_status_follows_it(
    deployment: tuple[subprocess.Popen[bytes], Path],
) -> None:
    _, home = deployment

    detached = _run(home, "missions/hello.yaml", "--detach")

    assert detached.returncode == 0, detached.stderr
    mission_id = detached.stdout.strip()
    assert len(mission_id) == 32

    def succeeded() -> bool:
        shown = subprocess.run(
            [sys.executable, "-m", "rustchain", "status", mission_id],
            env={**os.environ, "RUSTCHAIN_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
            check=False,
        )
        return ": succeeded" in shown.stdout

    _wait_for(succeeded, "the detached mission to succeed")


def test_detach_without_a_deployment_is_a_usage_error(tmp_path: Path) -> None:
    result = _run(tmp_path, "missions/hello.yaml", "--detach")

    assert result.returncode == 2
    assert "--detach needs a running deployment" in result.stderr


def test_a_bad_token_is_refused_in_one_line(
    deployment: tuple[subprocess.Popen[bytes], Path],
) -> None:
    _, home = deployment

    refused = subprocess.run(
        [sys.executable, "-m", "rustchain", "--token", "not-a-jwt", "missions"],
        env={**os.environ, "RUSTCHAIN_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )

    assert refused.returncode == 2
    assert refused.stderr.startswith("rustchain: unauthenticated: the token is not valid")
    assert "Traceback" not in refused.stderr
