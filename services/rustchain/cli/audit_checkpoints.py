"""The checkpoint half of `audit verify`, `export`, `checkpoint` and `prove`: keys, logs, proofs."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rustchain.audit.history import AUDITED_STORES
from rustchain.audit.log_files import (
    LOG_FILE,
    LogFileError,
    read_checkpoint_file,
    read_export_logs,
    write_export_logs,
)
from rustchain.audit.log_proofs import (
    TenantLog,
    kept_checkpoints,
    prove_log,
    read_tenant_log,
)
from rustchain.bootstrap.stores import open_store
from rustchain.cli import exit_codes
from rustchain.cli.common import fail
from rustchain.domain.events.checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from rustchain.domain.events.envelope import EventEnvelope
from rustchain.platform.credentials.signing_keys import (
    CHECKPOINT_KEYS,
    SigningKeyError,
    load_public_key,
)
from rustchain.platform.nats.checkpoint_stream import latest_published
from rustchain.platform.nats.jetstream import NATS_OUTAGES
from rustchain.platform.storage.checkpoints import check_signature, signed_checkpoints
from rustchain.platform.storage.event_store import EventStoreError
from rustchain.platform.storage.home import rustchain_home

NO_KEY = (
    f"no checkpoint public key ({CHECKPOINT_KEYS.public_variable}, its _FILE twin or"
    f" $RUSTCHAIN_HOME/keys/{CHECKPOINT_KEYS.name}.pub.pem)"
)
UNPROVEN = (
    "cannot prove that no event was deleted, reordered or rewritten with its hashes recomputed"
)


def public_key() -> Ed25519PublicKey | None:
    """The deployment's checkpoint public key, or None when none is configured."""
    try:
        return load_public_key(rustchain_home(), CHECKPOINT_KEYS)
    except SigningKeyError as error:
        fail(str(error), exit_codes.USAGE)


def required_key() -> Ed25519PublicKey:
    key = public_key()
    if key is None:
        fail(f"{NO_KEY}: checkpoints cannot be checked", exit_codes.USAGE)
    return key


def store_logs(
    tenant: str, key: Ed25519PublicKey | None
) -> list[tuple[TenantLog, list[Checkpoint]]]:
    """Each audited store's log of the tenant, with the checkpoints it keeps signed by `key`."""
    result: list[tuple[TenantLog, list[Checkpoint]]] = []
    try:
        for name in AUDITED_STORES:
            store = open_store(name, os.environ)
            try:
                kept = [] if key is None else kept_checkpoints(store, name, tenant, key)
                result.append((read_tenant_log(store, name, tenant), kept))
            finally:
                store.close()
    except EventStoreError as error:
        fail(f"cannot read the event stores: {error}", exit_codes.UNREACHABLE)
    return result


def saved_checkpoints(path: Path | None, tenant: str, key: Ed25519PublicKey) -> list[Checkpoint]:
    if path is None:
        return []
    try:
        return read_checkpoint_file(path, tenant, key)
    except LogFileError as error:
        fail(str(error), exit_codes.MISSION_AT_FAULT)


def _prove(
    logs: list[tuple[TenantLog, list[Checkpoint]]], saved: list[Checkpoint]
) -> tuple[list[str], list[str]]:
    """Lines on what each log was proven to extend, and the problems found."""
    lines: list[str] = []
    problems: list[str] = []
    for log, kept in logs:
        mine = [c for c in saved if c.store == log.store] + kept
        if not mine:
            if log.tree.size:
                lines.append(
                    f"checkpoints: none for the {log.store} store's log of tenant {log.tenant}"
                    f" ({log.tree.size} events): {UNPROVEN}"
                )
            continue
        proof = prove_log(log, mine)
        problems += proof.problems
        if not proof.problems:
            tail = log.tree.size - proof.proven
            after = f"; {tail} later event(s) not yet checkpointed" if tail else ""
            lines.append(
                f"checkpoints: the {log.store} store's log of tenant {log.tenant} extends"
                f" {len(mine)} signed checkpoint(s), up to position {proof.proven}{after}"
            )
    return lines, problems


def _published(url: str, tenant: str, key: Ed25519PublicKey) -> tuple[list[Checkpoint], str]:
    """The latest checkpoints the relays published for the tenant, and one line on them."""
    try:
        notes = asyncio.run(latest_published(url, tenant, AUDITED_STORES))
    except NATS_OUTAGES as error:
        return [], f"checkpoints: JetStream's copies not read ({error}): only kept and saved ones"
    published = signed_checkpoints(notes, key)
    return published, f"checkpoints: {len(published)} read from JetStream at {url}"


def verify_store_logs(
    tenant: str, checkpoint_file: Path | None, nats_url: str | None
) -> tuple[list[str], list[str]]:
    """`audit verify` from the stores: prove each log against the saved, published (when
    `nats_url` is given) and kept checkpoints."""
    key = required_key() if checkpoint_file is not None else public_key()
    if key is None:
        return [f"checkpoints: {NO_KEY}: {UNPROVEN}"], []
    trusted = saved_checkpoints(checkpoint_file, tenant, key)
    said: list[str] = []
    if nats_url is not None:
        published, line = _published(nats_url, tenant, key)
        trusted += [c for c in published if c.tenant == tenant]
        said.append(line)
    lines, problems = _prove(store_logs(tenant, key), trusted)
    return said + lines, problems


def export_logs(folder: Path, tenant: str, selected: bool) -> str:
    """Write the tenant's logs and latest checkpoints into an export; one line on what."""
    key = public_key()
    logs = store_logs(tenant, key)
    write_export_logs(
        folder, tenant, [log for log, _ in logs], {log.store: kept for log, kept in logs}, selected
    )
    covered = sum(1 for _, kept in logs if kept)
    return f"with {covered} store log(s) checkpointed" if key else f"without checkpoints: {NO_KEY}"


def _signed(notes: list[str], key: Ed25519PublicKey) -> tuple[list[Checkpoint], list[str]]:
    checkpoints: list[Checkpoint] = []
    problems: list[str] = []
    for note in notes:
        try:
            checkpoint = parse_checkpoint(note)
            check_signature(checkpoint, key)
        except CheckpointError as error:
            problems.append(f"export checkpoint refused: {error}")
            continue
        checkpoints.append(checkpoint)
    return checkpoints, problems


def verify_export_logs(
    folder: Path, events: list[EventEnvelope], checkpoint_file: Path | None
) -> tuple[list[str], list[str]]:
    """`audit verify --export`: the export's logs against their checkpoints, and its events."""
    key = required_key() if checkpoint_file is not None else public_key()
    if key is None:
        return [f"checkpoints: {NO_KEY}: {UNPROVEN}"], []
    if not (folder / LOG_FILE).exists() and checkpoint_file is None:
        return [
            f"checkpoints: the export carries no {LOG_FILE} (made before checkpoints): {UNPROVEN}"
        ], []
    try:
        logs, notes, selected = read_export_logs(folder)
    except LogFileError as error:
        return [], [f"{error}: the export cannot be proven against a checkpoint"]
    tenant = logs[0].tenant if logs else ""
    saved = saved_checkpoints(checkpoint_file, tenant, key)
    pairs: list[tuple[TenantLog, list[Checkpoint]]] = []
    problems: list[str] = []
    for log in logs:
        checkpoints, refused = _signed(notes.get(log.store, []), key)
        problems += refused
        pairs.append((log, checkpoints))
    lines, proven = _prove(pairs, saved)
    problems += proven
    hashes = {event.id: event.hash for event in events}
    missions = {event.mission_id for event in events}
    placed: set[str] = set()
    for log in logs:
        for position, entry in enumerate(log.entries, start=1):
            where = f"{log.store} log position {position} (event {entry.event_id})"
            if entry.event_id in hashes:
                placed.add(entry.event_id)
                if hashes[entry.event_id] != entry.hash.hex():
                    problems.append(f"{where}: the exported event is not the one the log holds")
            elif entry.mission_id in missions or not selected:
                problems.append(f"{where} of mission {entry.mission_id} is missing from the export")
    problems += [f"event {e} of the export is in no store's log" for e in hashes if e not in placed]
    return lines, problems
