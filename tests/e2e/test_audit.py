"""`rustchain audit` as an auditor runs it: replay, verify (stores and exports), export."""

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
    assert not (workspace / "hello.txt").exists(), "replay must never re-run a side effect"


def test_verify_proves_a_history_and_locates_tampering_in_the_store(tmp_path: Path) -> None:
    mission = _run_hello(tmp_path)

    assert rustchain(tmp_path, "audit", "verify").returncode == 0
    database = sqlite3.connect(tmp_path / "executor-events.sqlite")
    state = database.execute(
        "SELECT state FROM stored_events WHERE originator_version = 5"
    ).fetchone()[0]
    database.execute(
        "UPDATE stored_events SET state = ? WHERE originator_version = 5",
        (bytes(state).replace(b"Hello, Ada", b"Hello, Eve"),),
    )
    database.commit()
    database.close()
    result = rustchain(tmp_path, "audit", "verify", mission)

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

    result = rustchain(tmp_path, "audit", "verify")

    assert result.returncode == 1
    assert "ran without a SAFE verdict for its plan" in result.stderr
