"""`rustchain audit checkpoint|verify --checkpoint|prove`, and exports proven offline."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

from rustchain.audit.history import read_export, write_export
from rustchain.platform.credentials.signing_keys import CHECKPOINT_KEYS, ensure_key_pair, public_pem
from rustchain.platform.storage.checkpoints import Checkpointer, CheckpointSettings
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from tests.e2e.test_run import rustchain


def _run_hello_and_checkpoint(home: Path) -> str:
    """A real run, then the checkpoints its stores' relays would sign."""
    assert rustchain(home, "run", "missions/hello.yaml", "--var", "who=Ada").returncode == 0
    [mission] = re.findall(r"[0-9a-f]{32}", rustchain(home, "missions").stdout)
    key, _ = ensure_key_pair(home, CHECKPOINT_KEYS)
    for name in ("executor", "verifier"):
        store = open_event_store(EventStoreSettings(name=name, home=home))
        try:
            Checkpointer(store, name, key, CheckpointSettings(every_events=1)).advance()
        finally:
            store.close()
    return mission


def _delete_last_executor_event(home: Path) -> None:
    """The attacker deletes the mission's last event: no hash needs recomputing."""
    with sqlite3.connect(home / "executor-events.sqlite") as database:
        database.execute(
            "DELETE FROM stored_events WHERE rowid = (SELECT MAX(rowid) FROM stored_events)"
        )
    database.close()


def test_a_saved_checkpoint_proves_the_stores_then_catches_a_deleted_last_event(
    tmp_path: Path,
) -> None:
    mission = _run_hello_and_checkpoint(tmp_path)
    saved = tmp_path / "auditor" / "default.checkpoint.json"
    saved.parent.mkdir()

    kept = rustchain(tmp_path, "audit", "checkpoint", "--tenant", "default", "--out", str(saved))
    whole = rustchain(tmp_path, "audit", "verify", "--checkpoint", str(saved), "--no-jetstream")
    store = open_event_store(EventStoreSettings(name="executor", home=tmp_path))
    try:
        events = store.mission_events("default", mission)
    finally:
        store.close()
    proved = rustchain(tmp_path, "audit", "prove", events[2].id)
    _delete_last_executor_event(tmp_path)
    without_file = rustchain(tmp_path, "audit", "verify", "--no-jetstream")
    with_file = rustchain(tmp_path, "audit", "verify", "--checkpoint", str(saved), "--no-jetstream")

    assert kept.returncode == 0, kept.stderr
    assert "rustchain/executor/default size 8" in kept.stdout
    assert whole.returncode == 0, whole.stderr
    assert "executor store's log of tenant default extends 2 signed checkpoint(s)" in whole.stderr
    assert proved.returncode == 0, proved.stderr
    assert f"event {events[2].id}: position 3 of rustchain/executor/default" in proved.stdout
    assert "proven: included" in proved.stdout
    for result in (without_file, with_file):
        assert result.returncode == 1
        # One checkpoint only (signed after the run): detected, located within its size.
        assert (
            "executor store, tenant default: the log does not extend the checkpoint of size 8"
            " (the log holds 1 event(s) fewer)"
        ) in result.stderr
        assert "first position that differs: between 1 and 8" in result.stderr


def test_an_export_carries_its_log_and_is_proven_offline_with_only_the_public_key(
    tmp_path: Path,
) -> None:
    _run_hello_and_checkpoint(tmp_path)
    saved = tmp_path / "default.checkpoint.json"
    rustchain(tmp_path, "audit", "checkpoint", "--tenant", "default", "--out", str(saved))
    out = tmp_path / "export"
    exported = rustchain(tmp_path, "audit", "export", "--tenant", "default", "--out", str(out))
    elsewhere = tmp_path / "elsewhere"
    public = {
        CHECKPOINT_KEYS.public_variable: (tmp_path / "keys/checkpoint-signing.pub.pem").read_text()
    }
    offline = rustchain(
        elsewhere, "audit", "verify", "--export", str(out), "--checkpoint", str(saved), **public
    )
    older = tmp_path / "older-export"
    shutil.copytree(out, older)
    (older / "log.json").unlink()  # as exports made before checkpoints were
    old_format = rustchain(elsewhere, "audit", "verify", "--export", str(older), **public)
    # The attacker drops the last executor event from the export and rewrites its manifest.
    events, _ = read_export(out)
    last = [e for e in events if e.service == "executor"][-1]
    write_export([e for e in events if e.id != last.id], "default", out)
    tampered = rustchain(elsewhere, "audit", "verify", "--export", str(out), **public)
    other_key = ensure_key_pair(tmp_path / "impostor", CHECKPOINT_KEYS)[0].public_key()
    impostor = rustchain(
        elsewhere,
        "audit",
        "verify",
        "--export",
        str(out),
        **{CHECKPOINT_KEYS.public_variable: public_pem(other_key)},
    )

    assert exported.returncode == 0, exported.stderr
    assert "with 2 store log(s) checkpointed" in exported.stdout
    assert json.loads((out / "log.json").read_text())["tenant"] == "default"
    assert offline.returncode == 0, offline.stderr
    assert "extends 2 signed checkpoint(s), up to position 8" in offline.stderr
    assert old_format.returncode == 0, old_format.stderr
    assert "the export carries no log.json (made before checkpoints): cannot prove" in (
        old_format.stderr
    )
    assert tampered.returncode == 1
    assert (
        f"executor log position 8 (event {last.id}) of mission {last.mission_id} is missing"
        " from the export"
    ) in tampered.stderr
    assert impostor.returncode == 1
    assert "signed by another key" in impostor.stderr


def test_verify_without_any_checkpoint_says_what_it_cannot_prove(tmp_path: Path) -> None:
    assert rustchain(tmp_path, "run", "missions/hello.yaml", "--var", "who=Ada").returncode == 0
    ensure_key_pair(tmp_path, CHECKPOINT_KEYS)

    result = rustchain(tmp_path, "audit", "verify", "--no-jetstream")
    asked = rustchain(tmp_path, "audit", "checkpoint", "--tenant", "default")

    assert result.returncode == 0, result.stderr
    assert (
        "checkpoints: none for the executor store's log of tenant default (8 events): cannot"
        " prove that no event was deleted, reordered or rewritten with its hashes recomputed"
    ) in result.stderr
    assert asked.returncode == 1
    assert "no signed checkpoint of tenant default's logs yet" in asked.stderr
