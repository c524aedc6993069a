"""The files auditors keep: saved checkpoints, and the tenant logs an export carries.

A saved checkpoint file is JSON: `{"format": 1, "tenant": T, "checkpoints": [note, ...]}`, one
signed note per store. An export's `log.json` holds, per store, the latest kept checkpoints and
every leaf of the tenant's log (event id, mission id, event hash), so that `audit verify
--export` recomputes the roots and proves each event's position offline with the public key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rustchain.audit.log_proofs import TenantLog
from rustchain.domain.events.checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from rustchain.platform.storage.checkpoints import LogEntry, check_signature

FORMAT = 1
LOG_FILE = "log.json"


class LogFileError(ValueError):
    """A saved checkpoint or export log file that cannot be read; the message says where."""


def checkpoint_document(tenant: str, checkpoints: list[Checkpoint]) -> str:
    """The text of a saved checkpoint file."""
    document = {"format": FORMAT, "tenant": tenant, "checkpoints": [c.note() for c in checkpoints]}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _notes(document: Any, where: str) -> list[str]:
    notes = document.get("checkpoints") if isinstance(document, dict) else None
    if not isinstance(notes, list) or not all(isinstance(note, str) for note in notes):
        raise LogFileError(f"{where}: expected a 'checkpoints' list of signed notes")
    return notes


def read_checkpoint_file(path: Path, tenant: str, key: Ed25519PublicKey) -> list[Checkpoint]:
    """The checkpoints of a saved file, each signed by `key` and of `tenant`, or LogFileError."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise LogFileError(f"{path}: not a readable checkpoint file: {error}") from None
    checkpoints: list[Checkpoint] = []
    for note in _notes(document, str(path)):
        try:
            checkpoint = parse_checkpoint(note)
            check_signature(checkpoint, key)
        except CheckpointError as error:
            raise LogFileError(f"{path}: refused: {error}") from None
        if checkpoint.tenant != tenant:
            raise LogFileError(f"{path}: holds a checkpoint of tenant {checkpoint.tenant}")
        checkpoints.append(checkpoint)
    return checkpoints


def write_export_logs(
    folder: Path,
    tenant: str,
    logs: list[TenantLog],
    kept: dict[str, list[Checkpoint]],
    selected: bool,
) -> None:
    """Write log.json: each store's leaves and its latest kept checkpoint.

    `selected` says the export holds only some missions (--since/--until): events of the others
    are then expected to be absent, and are not reported missing.
    """
    stores = [
        {
            "store": log.store,
            "checkpoints": [c.note() for c in kept.get(log.store, [])[-1:]],
            "leaves": [[e.event_id, e.mission_id, e.hash.hex()] for e in log.entries],
        }
        for log in logs
    ]
    document = {"format": FORMAT, "tenant": tenant, "selected": selected, "stores": stores}
    (folder / LOG_FILE).write_text(json.dumps(document) + "\n", encoding="utf-8")


def read_export_logs(folder: Path) -> tuple[list[TenantLog], dict[str, list[str]], bool]:
    """An export's tenant logs, each store's checkpoint notes (signatures unchecked), and
    whether it holds only selected missions."""
    path = folder / LOG_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        logs: list[TenantLog] = []
        notes: dict[str, list[str]] = {}
        for item in document["stores"]:
            log = TenantLog(str(item["store"]), str(document["tenant"]))
            for event_id, mission_id, digest in item["leaves"]:
                log.add(LogEntry(log.tenant, str(event_id), str(mission_id), bytes.fromhex(digest)))
            logs.append(log)
            notes[log.store] = _notes(item, str(path))
        selected = bool(document.get("selected", False))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise LogFileError(f"{path}: not a readable export log: {error}") from None
    return logs, notes, selected
