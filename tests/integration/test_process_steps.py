"""process_start and process_kill through the real executor and OS sandbox, with the verifier
bypassed (no tenant policy): the background program is confined like a command's, is killed by
its handle or when its mission ends (completed, failed or cancelled), and no mission can name
another's program, by handle or by pid."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rustchain.bootstrap.executor import build_executor
from rustchain.domain.policy.model import CommandPolicy, NetworkPolicy, Policy
from rustchain.executor.application import ExecutorApplication
from rustchain.executor.process_supervisor import HANDLE_PREFIX, MissionProcessSupervisor
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.platform.storage.lease_fence import LeaseLostError
from rustchain.steps import default_registry
from rustchain.steps.process_start import ProcessStartParameters, process_start
from rustchain.steps.support.runtime import StepRunError
from tests.conditions import Signal, wait_until_sync
from tests.integration.sandbox_helpers import MECHANISMS, sandbox, sandboxed_context
from tests.paths import REPO
from tests.unit.compile_helpers import plan_of

# The background program: tries to read a file outside its workspace and to connect to the
# test's listener, says what happened, tells the mission it is up, then waits to be killed.
PROBE = """\
import socket, sys, time
try:
    open(sys.argv[1]).read()
    print("read: allowed")
except OSError:
    print("read: refused")
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[2])), 2)
    print("connect: allowed")
except OSError:
    print("connect: refused")
print("token", sys.argv[3], flush=True)
with open("up.fifo", "w") as up:
    up.write("up\\n")
time.sleep(300)
"""


def _mission(secret: Path, port: int, token: str, then: str) -> str:
    """serve (the probe) → wait (until it is up, then until the test says go) → `then` steps."""
    return f"""\
version: "1.0"
name: background
steps:
  - id: serve
    step_type: process_start
    parameters:
      command: python3
      args: ["-c", {json.dumps(PROBE)}, "{secret}", "{port}", "{token}"]
  - id: wait
    step_type: command
    depends_on: [serve]
    parameters:
      command: sh
      args: ["-c", "read up < up.fifo; echo started > started.fifo; read go < go.fifo"]
{then}"""


KILL = """\
  - id: stop
    step_type: process_kill
    depends_on: [wait]
    parameters: {handle: "{serve.handle}"}
"""
FAIL = """\
  - id: fail
    step_type: command
    depends_on: [wait]
    parameters: {command: "false"}
"""


def _running(token: str) -> list[int]:
    """Pids of processes on this machine whose command line holds `token`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if token.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@dataclasses.dataclass
class _Setup:
    executor: ExecutorApplication
    workspace: Path
    secret: Path
    listener: socket.socket
    token: str
    started: Signal
    go: Signal

    def mission(self, then: str) -> str:
        port = self.listener.getsockname()[1]
        return _mission(self.secret, port, self.token, then)


@pytest.fixture
def setup(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[_Setup]:
    mechanism = getattr(request, "param", "auto")
    store = open_event_store(EventStoreSettings(name="executor", home=tmp_path))
    executor = build_executor(
        {"RUSTCHAIN_HOME": str(tmp_path)},
        store,
        registry=default_registry(include_plugins=False),
        policy_for=None,  # the verifier bypassed: only the runtime's containment stands
        sandbox=sandbox(mechanism),
    )
    workspace = tmp_path / "ws"
    workspace.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("the host's secret\n")
    os.mkfifo(workspace / "up.fifo")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    token = f"rc-background-{uuid.uuid4().hex}"
    started, go = Signal(workspace / "started.fifo"), Signal(workspace / "go.fifo")
    try:
        yield _Setup(executor, workspace, secret, listener, token, started, go)
    finally:
        started.close()
        go.close()
        listener.close()
        store.close()
        for pid in _running(token):  # only if a test failed half-way
            os.kill(pid, 9)


async def _drive_after_go(setup: _Setup, mission: str, cancel: bool = False) -> str | None:
    drive = asyncio.ensure_future(setup.executor.drive("acme", mission))
    await asyncio.to_thread(setup.started.wait, 30, "the background program is up")
    assert _running(setup.token), "the background program runs while the mission does"
    if cancel:
        setup.executor.cancel("acme", mission, "the test cancels it")
    setup.go.send()
    run = await asyncio.wait_for(drive, 30)
    return run.outcome


@pytest.mark.parametrize("setup", MECHANISMS, indirect=True)
def test_a_background_program_is_confined_and_killed_by_its_handle(setup: _Setup) -> None:
    plan = plan_of(setup.mission(KILL))
    mission = setup.executor.start("acme", plan, {}, workspace=setup.workspace)

    outcome = asyncio.run(_drive_after_go(setup, mission))

    run = setup.executor.load("acme", mission)
    assert outcome == "succeeded", run.step("stop").error
    started, stopped = run.step("serve").output, run.step("stop").output
    assert started["handle"].startswith(HANDLE_PREFIX) and started["started"] is True
    assert stopped == {
        "handle": started["handle"],
        "killed": True,
        "exit_status": stopped["exit_status"],
    }
    log = (setup.workspace / started["stdout"]).read_text()
    assert log.splitlines() == ["read: refused", "connect: refused", f"token {setup.token}"]
    with pytest.raises(BlockingIOError):
        setup.listener.accept()
    wait_until_sync(lambda: not _running(setup.token), 10, "the killed program is gone")


@pytest.mark.parametrize("ending", ["succeeded", "failed", "cancelled"])
def test_every_background_program_is_killed_when_its_mission_ends(
    setup: _Setup, ending: str
) -> None:
    plan = plan_of(setup.mission(FAIL if ending == "failed" else ""))
    mission = setup.executor.start("acme", plan, {}, workspace=setup.workspace)

    outcome = asyncio.run(_drive_after_go(setup, mission, cancel=ending == "cancelled"))

    assert outcome == ending
    wait_until_sync(lambda: not _running(setup.token), 10, "the mission's program is gone")


@pytest.mark.parametrize("loss", ["heartbeat", "fence"])
def test_a_drive_that_lost_its_lease_kills_its_background_programs(
    setup: _Setup, loss: str
) -> None:
    # A replica learns that another took its mission over in one of two ways: its heartbeat's
    # renewal fails and the driver cancels the drive, or its next append is refused by the fence
    # (LeaseLostError). Either way the drive ends here, and with it the programs it started.
    plan = plan_of(setup.mission(""))
    mission = setup.executor.start("acme", plan, {}, workspace=setup.workspace)
    store = setup.executor.store
    appended = store.append

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise LeaseLostError("the lease on this mission is held by another executor now")

    async def scenario() -> None:
        drive = asyncio.ensure_future(setup.executor.drive("acme", mission))
        await asyncio.to_thread(setup.started.wait, 30, "the background program is up")
        assert _running(setup.token)
        if loss == "heartbeat":
            drive.cancel()
        else:
            setattr(store, "append", refused)  # noqa: B010 - the fence's refusal, injected
            setup.go.send()  # `wait` ends; recording that is the append refused
        await asyncio.wait([drive], timeout=30)
        if loss == "heartbeat":
            assert drive.cancelled()
        else:
            assert isinstance(drive.exception(), LeaseLostError)

    try:
        asyncio.run(scenario())
    finally:
        setattr(store, "append", appended)  # noqa: B010
    wait_until_sync(lambda: not _running(setup.token), 10, "the drive's program is gone")


def _kill_mission(handle_or_pid: str) -> str:
    return f"""\
version: "1.0"
name: kill-another
steps:
  - {{id: kill, step_type: process_kill, parameters: {{{handle_or_pid}}}}}
"""


def test_no_other_mission_can_kill_a_program_by_its_handle_or_pid(setup: _Setup) -> None:
    executor = setup.executor
    plan = plan_of(setup.mission(KILL))
    mission = executor.start("acme", plan, {}, workspace=setup.workspace)

    async def scenario() -> tuple[str | None, list[str | None]]:
        drive = asyncio.ensure_future(executor.drive("acme", mission))
        await asyncio.to_thread(setup.started.wait, 30, "the background program is up")
        handle = executor.load("acme", mission).step("serve").output["handle"]
        [pid, *_] = _running(setup.token)
        errors = []
        for tenant, parameter in [
            ("acme", f"handle: {handle}"),  # another mission of the same tenant
            ("other", f"handle: {handle}"),  # another tenant
            ("acme", f"pid: {pid}"),  # RustChain's way: a host pid
        ]:
            other = executor.start(tenant, plan_of(_kill_mission(parameter)), {})
            run = await executor.drive(tenant, other)
            assert run.outcome == "failed"
            errors.append(run.step("kill").error)
        assert _running(setup.token), "the program survived every other mission's attempt"
        setup.go.send()
        return (await asyncio.wait_for(drive, 30)).outcome, errors

    outcome, errors = asyncio.run(scenario())

    assert outcome == "succeeded"
    assert executor.load("acme", mission).step("stop").output["killed"] is True
    for error in errors[:2]:
        assert error is not None and "no process of this mission has the handle" in error
    assert errors[2] is not None and "never a pid" in errors[2]


def test_a_mission_runs_no_more_background_programs_than_its_cap(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("notes\n")
    policy = Policy(commands=CommandPolicy(max_background_processes=1))
    supervisor = MissionProcessSupervisor("m1")
    context = dataclasses.replace(sandboxed_context(tmp_path, policy=policy), processes=supervisor)
    follow = ProcessStartParameters(command="tail", args=["-f", "notes.txt"])

    async def scenario() -> str:
        first = await process_start(follow, context)
        try:
            with pytest.raises(StepRunError) as refused:
                await process_start(follow, dataclasses.replace(context, step_id="s2"))
            assert supervisor.running == 1
            return str(refused.value) + " " + str(first["handle"])
        finally:
            await supervisor.close()

    message = asyncio.run(scenario())

    assert "commands.max_background_processes=1" in message
    assert supervisor.running == 0


@pytest.mark.parametrize("working_dir", ["..", "/etc", "out", "inside/../../.."])
def test_a_working_directory_outside_the_workspace_is_refused(
    tmp_path: Path, working_dir: str
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "out").symlink_to(tmp_path)  # a link inside that leads outside
    supervisor = MissionProcessSupervisor("m1")
    context = dataclasses.replace(sandboxed_context(workspace), processes=supervisor)
    follow = ProcessStartParameters(command="true", working_dir=working_dir)

    with pytest.raises(StepRunError) as refused:
        asyncio.run(process_start(follow, context))

    assert "workspace" in str(refused.value)
    assert supervisor.running == 0
    assert not (workspace / "process_logs").exists()


def test_log_files_are_never_written_through_a_link_out_of_the_workspace(tmp_path: Path) -> None:
    workspace, outside = tmp_path / "ws", tmp_path / "outside"
    workspace.mkdir()
    outside.mkdir()
    (workspace / "process_logs").symlink_to(outside)  # planted by an earlier step
    supervisor = MissionProcessSupervisor("m1")
    context = dataclasses.replace(sandboxed_context(workspace), processes=supervisor)

    with pytest.raises(StepRunError):
        asyncio.run(process_start(ProcessStartParameters(command="true"), context))

    assert list(outside.iterdir()) == []
    assert supervisor.running == 0


def test_handles_are_unguessable() -> None:
    from rustchain.executor.process_supervisor import new_handle

    handles = {new_handle() for _ in range(1000)}
    assert len(handles) == 1000
    assert all(len(h) == len(HANDLE_PREFIX) + 32 for h in handles)


CRASH_MISSION = """\
version: "1.0"
name: background-crash
steps:
  - id: serve
    step_type: process_start
    parameters: {{command: python3, args: ["-c", "import time; time.sleep(300)", "{token}"]}}
  - id: hang
    name: Idempotent, hangs on its first run only
    step_type: command
    depends_on: [serve]
    retry: {{idempotent: true}}
    parameters:
      command: sh
      args: ["-c", "if [ ! -f once ]; then touch once; echo up > up.fifo; sleep 60; fi"]
  - id: stop
    step_type: process_kill
    depends_on: [hang]
    parameters: {{handle: "{{serve.handle}}"}}
"""


def _executor_process(home: Path, mechanism: str, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "RUSTCHAIN_HOME": str(home),
        "RUSTCHAIN_SANDBOX": mechanism,
        "PYTHONPATH": os.pathsep.join([str(REPO / "services"), str(REPO)]),
    }
    return subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "integration" / "executor_process.py"), *args],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_a_killed_executor_takes_its_background_programs_and_a_resume_reports_them_gone(
    tmp_path: Path, mechanism: str
) -> None:
    sandbox(mechanism)  # skips (or fails in CI) where the mechanism does not work
    home, workspace = tmp_path / "home", tmp_path / "ws"
    workspace.mkdir()
    token = f"rc-crash-{uuid.uuid4().hex}"
    (workspace / "mission.yaml").write_text(CRASH_MISSION.format(token=token))
    up = Signal(workspace / "up.fifo")
    executor = _executor_process(home, mechanism, "start", str(workspace / "mission.yaml"))
    try:
        up.wait(30, "the mission's background program has started")
        assert _running(token)
        executor.kill()
        executor.wait(10)
        wait_until_sync(lambda: not _running(token), 15, "the program died with its executor")
    finally:
        up.close()
        if executor.poll() is None:
            executor.kill()
            executor.wait()

    resumed = _executor_process(home, mechanism, "resume")
    out, _ = resumed.communicate(timeout=60)

    [line] = out.splitlines()
    assert line.endswith(" failed")
    store = open_event_store(EventStoreSettings(name="executor", home=home))
    try:
        failed = [
            e for e in store.mission_events("acme", line.split()[0]) if e.type == "StepFailed"
        ]
    finally:
        store.close()
    assert [e.payload["step_id"] for e in failed] == ["stop"]
    assert "is gone: it died with the executor that started it" in failed[0].payload["error"]


# A background program granted the network reaches it through the egress proxy, which its start
# keeps open while it runs (long after its step ended), not only for the length of a step.
GREETER = """\
import os, socket
with open("go.fifo") as go:
    go.readline()
host, port = os.environ["HTTPS_PROXY"][7:].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=10)
s.sendall(b"CONNECT 127.0.0.1:" + os.environ["TARGET"].encode() + b" HTTP/1.1\\r\\n\\r\\n")
s.recv(200)
s.sendall(b"hello from the background")
s.recv(1)
"""


def test_a_background_program_reaches_a_granted_host_through_the_egress_proxy(
    tmp_path: Path,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as target:
        port = target.getsockname()[1]
        policy = Policy(
            commands=CommandPolicy(
                allowed_programs=["python3"],
                unmodelled_programs=["python3"],
                denied_arguments=[],
                network_hosts=["127.0.0.1"],
                allowed_environment=["TARGET"],
            ),
            network=NetworkPolicy(ports=[port], denied_hosts=[]),
        )
        supervisor = MissionProcessSupervisor("m1")
        context = sandboxed_context(tmp_path, mechanism="bubblewrap", policy=policy)
        context = dataclasses.replace(context, processes=supervisor)
        go = Signal(tmp_path / "go.fifo")
        greeter = ProcessStartParameters(
            command="python3", args=["-c", GREETER], env={"TARGET": str(port)}
        )
        target.settimeout(20)

        async def scenario() -> bytes:
            try:
                output = await process_start(greeter, context)
                go.send()  # the step has ended; the program connects only now
                connection, _ = await asyncio.to_thread(target.accept)
                with connection:
                    received = await asyncio.to_thread(connection.recv, 100)
                ended = await supervisor.kill(output["handle"])
                assert ended.killed
                return received
            finally:
                await supervisor.close()
                go.close()

        received = asyncio.run(scenario())

    assert received == b"hello from the background"
