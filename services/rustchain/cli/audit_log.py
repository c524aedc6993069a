"""`rustchain audit checkpoint|prove`: the latest signed checkpoints, and inclusion proofs."""

from __future__ import annotations

from pathlib import Path

import click

from rustchain.audit.log_files import checkpoint_document
from rustchain.cli import exit_codes
from rustchain.cli.audit_checkpoints import required_key, saved_checkpoints, store_logs
from rustchain.cli.common import fail, tenant_option
from rustchain.domain.events.merkle_log import ProofError, verify_inclusion


@click.command(name="checkpoint")
@tenant_option("Whose log.", required=True)
@click.option("--out", "out_file", type=click.Path(path_type=Path), help="Save to this file.")
def checkpoint_command(tenant: str, out_file: Path | None) -> None:
    """The latest signed checkpoint of the tenant's log in each store: keep it to audit later."""
    key = required_key()
    latest = [kept[-1] for _, kept in store_logs(tenant, key) if kept]
    if not latest:
        fail(
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


@click.command(name="prove")
@click.argument("event_id")
@tenant_option("The event's tenant.")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(path_type=Path),
    help="Prove against this saved checkpoint instead of the latest kept one.",
)
def prove_command(event_id: str, tenant: str, checkpoint_file: Path | None) -> None:
    """An inclusion proof: the event is at its position in a signed checkpoint of its log."""
    key = required_key()
    saved = saved_checkpoints(checkpoint_file, tenant, key)
    for log, kept in store_logs(tenant, key):
        position = log.position_of(event_id)
        if position is None:
            continue
        candidates = [c for c in saved if c.store == log.store] if saved else kept[-1:]
        covering = [c for c in candidates if c.size >= position]
        if not covering:
            fail(
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
            fail(
                f"event {event_id} at position {position}: not in {checkpoint.describe()}: {error}",
                exit_codes.MISSION_AT_FAULT,
            )
        click.echo(f"event {event_id}: position {position} of {checkpoint.origin}")
        click.echo(f"checkpoint: {checkpoint.describe()}")
        for index, node in enumerate(proof, start=1):
            click.echo(f"proof[{index}]: {node.hex()}")
        click.echo(f"proven: included ({len(proof)} hashes, RFC 9162 inclusion proof)")
        return
    fail(f"no event {event_id} in tenant {tenant}'s logs", exit_codes.MISSION_AT_FAULT)
