"""An executor killed (SIGKILL) mid-step leaves no program of that step running, under either
sandbox mechanism: nothing a mission started outlives the process that ran it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conditions import Signal, wait_until_sync
from tests.integration.sandbox_helpers import MECHANISMS, sandbox
from tests.paths import REPO

MISSION = """\
version: "1.0"
name: killed-executor
steps:
  - id: hang
    step_type: command
    parameters:
      command: sh
      args:
        - "-c"
        - "sleep {seconds}1 & setsid sleep {seconds}2 & echo started > up.fifo; sleep {seconds}3"
"""


def _sleeping(seconds: str) -> list[int]:
    """Pids of `sleep <seconds>` processes on this machine."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline[:2] == [b"sleep", seconds.encode()]:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_a_killed_executor_leaves_no_program_of_its_step_running(
    tmp_path: Path, mechanism: str
) -> None:
    sandbox(mechanism)  # skips (or fails in CI) where the mechanism does not work
    seconds = str(400 + MECHANISMS.index(mechanism) * 10)  # names this test's processes
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "mission.yaml").write_text(MISSION.replace("{seconds}", seconds))
    started = Signal(workspace / "up.fifo")
    env = {
        **os.environ,
        "RUSTCHAIN_HOME": str(tmp_path / "home"),
        "PYTHONPATH": str(REPO),
        "RUSTCHAIN_SANDBOX": mechanism,
    }
    executor = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "tests" / "integration" / "executor_process.py"),
            "start",
            str(workspace / "mission.yaml"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        started.wait(30, "the step's program has started")
        programs = [f"{seconds}{n}" for n in (1, 2, 3)]
        wait_until_sync(
            lambda: all(_sleeping(p) for p in programs), 15, "the step's programs are running"
        )

        executor.send_signal(signal.SIGKILL)
        executor.wait(10)

        wait_until_sync(
            lambda: not any(_sleeping(p) for p in programs),
            15,
            "every program of the killed executor's step has ended",
        )
    finally:
        if executor.poll() is None:
            executor.kill()
            executor.wait()
