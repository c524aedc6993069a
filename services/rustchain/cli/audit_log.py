"""`rustchain audit checkpoint|prove`, and the checkpoint half of `audit verify` and `export`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import NoReturn

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rustchain.audit.history import AUDITED_STORES
from rustchain.audit.log_files import (
    LogFileError,
    checkpoint_document,
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
from rustchain.cli import exit_codes
from rustchain.cli.audit import audit
from rustchain.domain.checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from rustchain.domain.events import EventEnvelope
from rustchain.domain.merkle_log import ProofError, verify_inclusion
from rustchain.platform.checkpoint_stream import latest_published
from rustchain.platform.checkpoints import check_signature, signed_checkpoints
from rustchain.platform.event_store import EventStoreError, EventStoreSettings, open_event_store
from rustchain.platform.home import rustchain_home
from rustchain.platform.jetstream import NATS_OUTAGES
from rustchain.platform.signing_keys import CHECKPOINT_KEYS, SigningKeyError, load_public_key

NO_KEY = (
    f"no checkpoint public key ({CHECKPOINT_KEYS.public_variable}, its _FILE twin or"
    f" $RUSTCHAIN_HOME/keys/{CHECKPOINT_KEYS.name}.pub.pem)"
)
UNPROVEN = (
    "cannot prove that no event was deleted, reordered or rewritten with its hashes recomputed"
)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"rustchain: {message}", err=True)
    sys.exit(code)


def public_key() -> Ed25519PublicKey | None:
    """The deployment's checkpoint public key, or None when none is configured."""
    try:
        return load_public_key(rustchain_home(), CHECKPOINT_KEYS)
    except SigningKeyError as error:
        _fail(str(error), exit_codes.USAGE)


def _required_key() -> Ed25519PublicKey:
    key = public_key()
    if key is None:
        _fail(f"{NO_KEY}: checkpoints cannot be checked", exit_codes.USAGE)
    return key


def store_logs(
    tenant: str, key: Ed25519PublicKey | None
) -> list[tuple[TenantLog, list[Checkpoint]]]:
    """Each audited store's log of the tenant, with the checkpoints it keeps signed by `key`."""
    result: list[tuple[TenantLog, list[Checkpoint]]] = []
    try:
        for name in AUDITED_STORES:
            store = open_event_store(EventStoreSettings.from_environ(name))
            try:
                kept = [] if key is None else kept_checkpoints(store, name, tenant, key)
                result.append((read_tenant_log(store, name, tenant), kept))
            finally:
                store.close()
    except EventStoreError as error:
        _fail(f"cannot read the event stores: {error}", exit_codes.UNREACHABLE)
    return result


def _saved(path: Path | None, tenant: str, key: Ed25519PublicKey) -> list[Checkpoint]:
    if path is None:
        return []
    try:
        return read_checkpoint_file(path, tenant, key)
    except LogFileError as error:
        _fail(str(error), exit_codes.MISSION_AT_FAULT)


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
    key = _required_key() if checkpoint_file is not None else public_key()
    if key is None:
        return [f"checkpoints: {NO_KEY}: {UNPROVEN}"], []
    trusted = _saved(checkpoint_file, tenant, key)
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
    key = _required_key() if checkpoint_file is not None else public_key()
    if key is None:
        return [f"checkpoints: {NO_KEY}: {UNPROVEN}"], []
    try:
        logs, notes, selected = read_export_logs(folder)
    except LogFileError as error:
        return [], [f"{error}: the export cannot be proven against a checkpoint"]
    tenant = logs[0].tenant if logs else ""
    saved = _saved(checkpoint_file, tenant, key)
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


@audit.command(name="checkpoint")
@click.option("--tenant", required=True, help="Whose log.")
@click.option("--out", "out_file", type=click.Path(path_type=Path), help="Save to this file.")
def checkpoint_command(tenant: str, out_file: Path | None) -> None:
    """The latest signed checkpoint of the tenant's log in each store: keep it to audit later."""
    key = _required_key()
    latest = [kept[-1] for _, kept in store_logs(tenant, key) if kept]
    if not latest:
        _fail(
            f"no signed checkpoint of tenant {tenant}'s logs yet (the relay signs them)",
            exit_codes.MISSION_AT_FAULT,
        )
    text = checkpoint_document(tenant, latest)
    if out_file is None:
        click.echo(text, nl=False)
        return
    out_file.write_text(text, encoding="utf-8")
    for checkpoint in latest:
        click.echo(f"saved: {checkpoint.describe()}")
    click.echo(f"to {out_file}: keep it where whoever writes the stores cannot reach it")


@audit.command(name="prove")
@click.argument("event_id")
@click.option("--tenant", default="default", show_default=True, help="The event's tenant.")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(path_type=Path),
    help="Prove against this saved checkpoint instead of the latest kept one.",
)
def prove_command(event_id: str, tenant: str, checkpoint_file: Path | None) -> None:
    """An inclusion proof: the event is at its position in a signed checkpoint of its log."""
    key = _required_key()
    saved = _saved(checkpoint_file, tenant, key)
    for log, kept in store_logs(tenant, key):
        position = log.position_of(event_id)
        if position is None:
            continue
        candidates = [c for c in saved if c.store == log.store] if saved else kept[-1:]
        covering = [c for c in candidates if c.size >= position]
        if not covering:
            _fail(
                f"event {event_id} is at position {position} of the {log.store} store's log,"
                " after every signed checkpoint: not provable yet",
                exit_codes.MISSION_AT_FAULT,
            )
        checkpoint = covering[-1]
        proof = log.tree.inclusion_proof(position - 1, checkpoint.size)
        try:
            verify_inclusion(
                log.tree.leaf(position - 1), position - 1, checkpoint.size, proof, checkpoint.root
            )
        except ProofError as error:
            _fail(
                f"event {event_id} at position {position}: not in {checkpoint.describe()}: {error}",
                exit_codes.MISSION_AT_FAULT,
            )
        click.echo(f"event {event_id}: position {position} of {checkpoint.origin}")
        click.echo(f"checkpoint: {checkpoint.describe()}")
        for index, node in enumerate(proof, start=1):
            click.echo(f"proof[{index}]: {node.hex()}")
        click.echo(f"proven: included ({len(proof)} hashes, RFC 9162 inclusion proof)")
        return
    _fail(f"no event {event_id} in tenant {tenant}'s logs", exit_codes.MISSION_AT_FAULT)
