"""`rustchain artifact get`: the bytes of an artifact an event references, verified by hash."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
from eventsourcing.persistence import PersistenceError

from rustchain.cli import exit_codes
from rustchain.cli.common import fail as _fail
from rustchain.cli.common import nats_url as resolve_nats_url
from rustchain.cli.common import tenant_option
from rustchain.domain.events.names import EventNameError, validate_tenant
from rustchain.domain.plans.artifacts import ArtifactError, check_sha256, sha256_of
from rustchain.platform.nats.artifact_relay import download
from rustchain.platform.nats.jetstream import NATS_OUTAGES, connect
from rustchain.platform.nats.server import NATS_URL_VARIABLE
from rustchain.platform.storage.event_store import (
    EventStoreError,
    EventStoreSettings,
    open_event_store,
)

SOURCES = ("auto", "store", "jetstream")


def _from_store(store_name: str, tenant: str, sha256: str) -> bytes | None:
    store = open_event_store(EventStoreSettings.from_environ(store_name))
    try:
        return store.artifacts.get(tenant, sha256)
    finally:
        store.close()


async def _from_jetstream(url: str, tenant: str, sha256: str) -> bytes | None:
    client = await connect(url)
    try:
        return await download(client.jetstream(), tenant, sha256)
    finally:
        await client.close()


@click.group()
def artifact() -> None:
    """Artifacts: large step outputs, kept by SHA-256 and referenced by events."""


@artifact.command("get")
@click.argument("sha256")
@tenant_option("Whose artifact.", required=True)
@click.option(
    "--out", "out_file", type=click.Path(path_type=Path), help="Write it here (default: stdout)."
)
@click.option(
    "--from",
    "source",
    type=click.Choice(SOURCES),
    default="auto",
    show_default=True,
    help="The executor's store, the tenant's JetStream object store, or the store when it is"
    " on this machine and JetStream otherwise.",
)
@click.option("--store", "store_name", default="executor", show_default=True)
@click.option("--nats-url", help=f"The NATS server (default: ${NATS_URL_VARIABLE}).")
def get(
    sha256: str,
    tenant: str,
    out_file: Path | None,
    source: str,
    store_name: str,
    nats_url: str | None,
) -> None:
    """Write the artifact named SHA256, after checking that its bytes hash to that name."""
    try:
        check_sha256(sha256)
        validate_tenant(tenant)
    except (ArtifactError, EventNameError) as error:
        raise click.UsageError(str(error)) from None
    data: bytes | None = None
    tried: list[str] = []
    if source in ("auto", "store"):
        try:
            data = _from_store(store_name, tenant, sha256)
            tried.append(f"the {store_name} store")
        except (EventStoreError, PersistenceError) as error:
            if source == "store":
                _fail(f"cannot read the {store_name} store: {error}", exit_codes.UNREACHABLE)
    if data is None and source in ("auto", "jetstream"):
        url = resolve_nats_url(nats_url)
        try:
            data = asyncio.run(_from_jetstream(url, tenant, sha256))
        except NATS_OUTAGES as error:
            _fail(f"cannot read JetStream at {url}: {error}", exit_codes.UNREACHABLE)
        tried.append(f"JetStream at {url}")
    if data is None:
        _fail(
            f"no artifact {sha256} of tenant {tenant} in {' or '.join(tried)}",
            exit_codes.MISSION_AT_FAULT,
        )
    if sha256_of(data) != sha256:
        _fail(
            f"artifact {sha256} was altered: its bytes hash to {sha256_of(data)}",
            exit_codes.MISSION_AT_FAULT,
        )
    if out_file is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    out_file.write_bytes(data)
    click.echo(f"wrote {len(data):,} bytes of artifact {sha256} (SHA-256 verified) to {out_file}")
