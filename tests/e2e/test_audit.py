"""`rustchain audit` as an auditor runs it: replay, verify, export, reexecute."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from tests.e2e.test_run import rustchain


def _run_hello(home: Path) -> str:
    assert rustchain(home, "run", "missions/hello.yaml", "--var", "who=Ada").returncode == 0
    [mission] = re.findall(r"[0-9a-f]{32}", rustchain(home, "missions").stdout)
    return mission


def test_replay_shows_the_verdict_before_the_steps_without_running_anything(tmp_path: Path) -> None:
    mission = _run_hello(tmp_path)
    workspace = tmp_path / "workspaces" / "default" / mission
    (workspace / "hello.txt").unlink()

    result = rustchain(tmp_path, "audit", "replay", mission, "--json")

    facts = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0
    assert [f["type"] for f in facts][:3] == ["PlanVerified", "MissionStarted", "StepStarted"]
    assert facts[0]["detail"].startswith("verdict safe under policy default")
    assert facts[-1]["detail"] == "succeeded; failed steps []"
    [say_it] = [f for f in facts if f["type"] == "StepStarted" and f["step_id"] == "say_it"]
    assert say_it["detail"].startswith('attempt 1: inputs {"args": ["Hello, Ada! This file')
    assert not (workspace / "hello.txt").exists(), "replay must never re-run a side effect"


def _tamper_stored_event(home: Path, version: int, old: bytes, new: bytes) -> None:
    """Rewrite one event of the executor's store behind its back."""
    database = sqlite3.connect(home / "executor-events.sqlite")
    state = database.execute(
        "SELECT state FROM stored_events WHERE originator_version = ?", (version,)
    ).fetchone()[0]
    assert old in bytes(state)
    database.execute(
        "UPDATE stored_events SET state = ? WHERE originator_version = ?",
        (bytes(state).replace(old, new), version),
    )
    database.commit()
    database.close()


def test_verify_proves_a_history_and_locates_tampering_in_the_store(tmp_path: Path) -> None:
    mission = _run_hello(tmp_path)

    assert rustchain(tmp_path, "audit", "verify", "--no-jetstream").returncode == 0
    # Event 5 is read_greeting's StepSucceeded: its output.
    _tamper_stored_event(tmp_path, 5, b"Hello, Ada", b"Hello, Eve")
    result = rustchain(tmp_path, "audit", "verify", mission, "--no-jetstream")

    assert result.returncode == 1
    assert f"default/{mission}: executor chain: event" in result.stderr
    assert "(position 5 of mission" in result.stderr
    assert "altered: its content does not match its hash" in result.stderr


def test_an_export_verifies_offline_and_tampering_with_it_is_located(tmp_path: Path) -> None:
    _run_hello(tmp_path)
    out = tmp_path / "export"

    exported = rustchain(tmp_path, "audit", "export", "--tenant", "default", "--out", str(out))
    offline = rustchain(tmp_path / "elsewhere", "audit", "verify", "--export", str(out))
    lines = (out / "events.jsonl").read_text().splitlines()
    (out / "events.jsonl").write_text("\n".join(lines[:3] + lines[4:]) + "\n")
    tampered = rustchain(tmp_path / "elsewhere", "audit", "verify", "--export", str(out))

    assert exported.returncode == 0
    assert "exported 9 events of 1 mission(s) (2 chains)" in exported.stdout
    assert offline.returncode == 0, offline.stderr
    assert tampered.returncode == 1
    assert "manifest counts 9 events, the file holds 8" in tampered.stderr
    assert "an event is missing" in tampered.stderr


def test_a_run_without_a_safe_verdict_is_reported(tmp_path: Path) -> None:
    _run_hello(tmp_path)
    (tmp_path / "verifier-events.sqlite").unlink()

    result = rustchain(tmp_path, "audit", "verify", "--no-jetstream")

    assert result.returncode == 1
    assert "ran without a SAFE verdict for its plan" in result.stderr


def test_reexecute_re_renders_every_recorded_input_without_running_anything(
    tmp_path: Path,
) -> None:
    mission = _run_hello(tmp_path)
    workspace = tmp_path / "workspaces" / "default" / mission
    (workspace / "hello.txt").unlink()

    result = rustchain(tmp_path, "audit", "reexecute", mission)
    as_json = rustchain(tmp_path, "audit", "reexecute", mission, "--json")

    assert result.returncode == 0, result.stderr
    assert "say_it          attempt 1: inputs the same" in result.stdout
    assert "reexecuted: 3 attempt(s) of 3 step(s) re-rendered" in result.stdout
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(r["step_id"], r["status"]) for r in records] == [
        ("write_greeting", "same"),
        ("read_greeting", "same"),
        ("say_it", "same"),
    ]
    assert not (workspace / "hello.txt").exists(), "reexecute must never re-run a side effect"


def test_reexecute_locates_a_tampered_output_in_the_inputs_of_the_step_that_used_it(
    tmp_path: Path,
) -> None:
    mission = _run_hello(tmp_path)
    _tamper_stored_event(tmp_path, 5, b"Hello, Ada", b"Hello, Eve")

    result = rustchain(tmp_path, "audit", "reexecute", mission)
    as_json = rustchain(tmp_path, "audit", "reexecute", mission, "--json")

    assert result.returncode == 1
    assert "say_it          attempt 1: DIVERGED in 1 parameter(s)" in result.stdout
    assert "read_greeting   attempt 1: inputs the same" in result.stdout
    assert (
        "diverged: step 'say_it' attempt 1, args[0]: recorded 'Hello, Ada! This file was"
        in result.stderr
    )
    assert ", now 'Hello, Eve! This file was" in result.stderr
    assert f"mission {mission}: 1 divergence(s) in 1 of 3 attempt(s)" in result.stderr
    [say_it] = [json.loads(line) for line in as_json.stdout.splitlines()][2:]
    assert say_it["divergences"] == [
        {
            "path": "args[0]",
            "recorded": "Hello, Ada! This file was written by a RustChain mission.\n",
            "now": "Hello, Eve! This file was written by a RustChain mission.\n",
        }
    ]


def test_reexecute_of_an_unknown_mission_fails_with_a_message(tmp_path: Path) -> None:
    result = rustchain(tmp_path, "audit", "reexecute", "f" * 32)

    assert result.returncode == 1
    assert f"no mission '{'f' * 32}' for tenant 'default'" in result.stderr
