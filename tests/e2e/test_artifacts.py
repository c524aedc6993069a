"""A large output as a user meets it: run, status, artifact get, audit verify, export, tampering."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

from rustchain.domain.plans.artifacts import ArtifactRef
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from tests.e2e.test_run import rustchain

SIZE = 6_000_000
CONTENT = b" " * (SIZE - 1) + b"x"
SHA = hashlib.sha256(CONTENT).hexdigest()
MISSION = f"""\
version: "1.0"
name: six megabytes
outputs:
  big: "{{six.output}}"
steps:
  - id: six
    step_type: command
    parameters: {{command: printf, args: ["%{SIZE}s", x], max_output_bytes: 10000000}}
"""


def home_with_mission(tmp_path: Path) -> Path:
    """A home whose default policy lets a command keep 10 MB, and the mission file in it."""
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "default.yaml").write_text(
        "name: large-outputs\ncommands:\n  max_output_bytes: 10000000\n"
    )
    (tmp_path / "six.yaml").write_text(MISSION)
    return tmp_path / "six.yaml"


def test_a_6mb_output_runs_shows_fetches_verifies_and_exports_as_an_artifact(
    tmp_path: Path,
) -> None:
    mission_file = home_with_mission(tmp_path)

    ran = rustchain(tmp_path, "run", str(mission_file))
    assert ran.returncode == 0, ran.stderr
    [mission] = re.findall(r"[0-9a-f]{32}", rustchain(tmp_path, "missions").stdout)
    shown = rustchain(tmp_path, "status", mission)
    fetched = rustchain(tmp_path, "artifact", "get", SHA, "--tenant", "default", "--out", "o.bin")
    verified = rustchain(tmp_path, "audit", "verify", "--tenant", "default", "--no-jetstream")
    exported = rustchain(
        tmp_path, "audit", "export", "--tenant", "default", "--out", str(tmp_path / "x")
    )
    offline = rustchain(tmp_path, "audit", "verify", "--export", str(tmp_path / "x"))
    replayed = rustchain(tmp_path, "audit", "replay", mission, "--json")

    assert shown.returncode == 0, shown.stderr
    assert f"output big: artifact {SHA} (6,000,000 bytes, text/plain" in shown.stdout
    assert fetched.returncode == 0, fetched.stderr
    assert "SHA-256 verified" in fetched.stdout
    assert hashlib.sha256((Path.cwd() / "o.bin").read_bytes()).hexdigest() == SHA
    (Path.cwd() / "o.bin").unlink()
    assert verified.returncode == 0, verified.stderr
    assert exported.returncode == 0, exported.stderr
    assert "and 1 artifact(s)" in exported.stdout
    assert (tmp_path / "x" / "artifacts" / SHA).read_bytes() == CONTENT
    assert offline.returncode == 0, offline.stderr
    assert replayed.returncode == 0, replayed.stderr
    assert f"output artifact {SHA}" in replayed.stdout
    store = open_event_store(EventStoreSettings(name="executor", home=tmp_path))
    try:
        events = store.mission_events("default", mission)
    finally:
        store.close()
    assert max(len(e.to_json()) for e in events) < 16 * 1024
    [succeeded] = [e for e in events if e.type == "StepSucceeded"]
    assert ArtifactRef.of_value(succeeded.payload["output"]) is not None

    _tamper_and_check(tmp_path, mission, succeeded.sequence)


def _tamper_and_check(tmp_path: Path, mission: str, sequence: int) -> None:
    """An altered artifact, in the export and in the store, is found and located."""
    (tmp_path / "x" / "artifacts" / SHA).write_bytes(CONTENT.replace(b"x", b"y"))
    altered_export = rustchain(tmp_path, "audit", "verify", "--export", str(tmp_path / "x"))
    database = sqlite3.connect(tmp_path / "executor-events.sqlite")
    with database:
        database.execute("UPDATE executor_artifacts SET data = ?", (b"forged",))
    database.close()
    altered_store = rustchain(tmp_path, "audit", "verify", "--no-jetstream")
    refused = rustchain(tmp_path, "artifact", "get", SHA, "--tenant", "default", "--from", "store")
    replay_refused = rustchain(tmp_path, "audit", "replay", mission)

    assert altered_export.returncode == 1
    assert f"event {sequence} of default/{mission}/executor (StepSucceeded" in (
        altered_export.stderr
    )
    assert f"artifact {SHA} was altered" in altered_export.stderr
    assert altered_store.returncode == 1
    assert f"artifact {SHA} was altered: its bytes (6) hash to" in altered_store.stderr
    assert "event 4 of default" in altered_store.stderr  # MissionFinished's output names it too
    assert refused.returncode == 1
    assert f"artifact {SHA} was altered" in refused.stderr
    assert replay_refused.returncode == 1
    assert "2 reference(s) to a missing or altered artifact" in replay_refused.stderr
