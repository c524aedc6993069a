"""SIGKILL the executor mid-mission and resume: no non-idempotent side effect happens twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from rustchain.domain.events.chain import verify_chain
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from tests.conditions import Signal
from tests.paths import REPO

MISSION = """\
version: "1.0"
name: crash-test
config: {max_parallel_steps: 4, fail_fast: false}
steps:
  - id: first
    name: Append a line once
    step_type: command
    parameters: {command: sh, args: ["-c", "echo first >> log.txt"]}
  - id: append
    name: Append, then hang
    step_type: command
    depends_on: [first]
    parameters:
      command: sh
      args: ["-c", "echo append >> log.txt; echo started > append.fifo; sleep 60"]
  - id: fetch
    name: Idempotent, hangs on its first run only
    step_type: command
    depends_on: [first]
    retry: {idempotent: true}
    parameters:
      command: sh
      args:
        - "-c"
        - "if [ -f fetch.once ]; then echo fetch >> log.txt; else touch fetch.once;
          echo started > fetch.fifo; sleep 60; fi"
  - id: after_fetch
    name: Runs once fetch is done
    step_type: command
    depends_on: [fetch]
    parameters: {command: sh, args: ["-c", "echo after_fetch >> log.txt"]}
"""


def _executor(home: Path, *args: str) -> subprocess.Popen[str]:
    # The services of this checkout, not those of whichever tree the environment installed.
    python_path = os.pathsep.join([str(REPO / "services"), str(REPO)])
    env = {**os.environ, "RUSTCHAIN_HOME": str(home), "PYTHONPATH": python_path}
    return subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "integration" / "executor_process.py"), *args],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def _kill_processes_in(folder: Path) -> None:
    """The killed executor's step programs outlive it (own sessions); stop them."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "cwd").resolve() == folder.resolve():
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


def test_killed_executor_resumes_without_repeating_side_effects(tmp_path: Path) -> None:
    home, workspace = tmp_path / "home", tmp_path / "ws"
    workspace.mkdir()
    mission = workspace / "mission.yaml"
    mission.write_text(MISSION)

    append, fetch = Signal(workspace / "append.fifo"), Signal(workspace / "fetch.fifo")

    first = _executor(home, "start", str(mission))
    try:
        append.wait(30, "the non-idempotent step is running")
        fetch.wait(30, "the idempotent step is running")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
        append.close()
        fetch.close()
    assert first.stdout is not None
    mission_id = first.stdout.readline().strip()

    second = _executor(home, "resume")
    out, _ = second.communicate(timeout=60)
    _kill_processes_in(workspace)

    assert second.returncode == 0
    assert out.split() == [mission_id, "failed"]
    assert (workspace / "log.txt").read_text().splitlines() == [
        "first",
        "append",
        "fetch",
        "after_fetch",
    ]
    store = open_event_store(EventStoreSettings(name="executor", home=home))
    events = store.mission_events("acme", mission_id)
    store.close()
    assert verify_chain(events) is None
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    interrupted = {
        e.payload["step_id"]: e.payload["rerun"] for e in events if e.type == "StepInterrupted"
    }
    assert interrupted == {"append": False, "fetch": True}
    starts = [
        (e.payload["step_id"], e.payload["attempt"]) for e in events if e.type == "StepStarted"
    ]
    assert sorted(starts) == [
        ("after_fetch", 1),
        ("append", 1),
        ("fetch", 1),
        ("fetch", 2),
        ("first", 1),
    ]
    assert events[-1].type == "MissionFinished"
    assert events[-1].payload["failed_steps"] == ["append"]
