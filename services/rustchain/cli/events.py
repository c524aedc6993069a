"""`rustchain events`: read a tenant's events from JetStream; `events reconcile` repairs it."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click
import nats.js.errors
from eventsourcing.persistence import PersistenceError

from rustchain.cli import exit_codes
from rustchain.cli.common import fail as _fail
from rustchain.cli.common import nats_url as resolve_nats_url
from rustchain.cli.common import resolve_tenant
from rustchain.cli.relay_run import relay_store, stream_settings
from rustchain.domain.events.envelope import EventEnvelope
from rustchain.domain.events.names import (
    EventNameError,
    stream_name,
    validate_mission_id,
    validate_tenant,
)
from rustchain.domain.events.size import EventTooLargeError
from rustchain.platform.credentials.signing_keys import (
    SigningKeyError,
    token_public_key,
)
from rustchain.platform.nats.artifact_relay import ArtifactUploadError
from rustchain.platform.nats.auth_callout import callout_secrets, serve_callout
from rustchain.platform.nats.jetstream import (
    NATS_ERRORS,
    NatsCredentialError,
    NatsPermissionError,
    NatsUnavailableError,
    StreamConfigError,
    connect,
    ensure_readable,
    read_events,
)
from rustchain.platform.nats.reconcile import reconcile as reconcile_store
from rustchain.platform.nats.relay_election import (
    ElectionSettingError,
)
from rustchain.platform.nats.server import NATS_URL_VARIABLE
from rustchain.platform.storage.event_store import (
    SQLITE_SUFFIX,
    EventStoreError,
    EventStoreSettings,
    describe_store,
    open_event_store,
)
from rustchain.platform.storage.home import rustchain_home
from rustchain.platform.telemetry.process import TEXT, telemetry_for
from rustchain.platform.telemetry.setup import TelemetrySettingError

T = TypeVar("T")


def _run(work: Coroutine[Any, Any, T], url: str) -> T:
    """Run the async work; a NATS outage becomes one line and exit code 3."""
    try:
        return asyncio.run(work)
    except NatsCredentialError as error:
        _fail(f"unauthenticated: {error}", exit_codes.USAGE)
    except NatsPermissionError as error:
        _fail(f"permission_denied: {error}", exit_codes.USAGE)
    except NatsUnavailableError as error:
        _fail(str(error), exit_codes.UNREACHABLE)
    except StreamConfigError as error:
        _fail(str(error), exit_codes.MISSION_AT_FAULT)
    except NATS_ERRORS as error:
        _fail(f"NATS at {url} failed: {error or type(error).__name__}", exit_codes.UNREACHABLE)


def _line(event: EventEnvelope) -> str:
    when = event.occurred_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    payload = json.dumps(event.payload, sort_keys=True, ensure_ascii=False)
    return (
        f"{when} {event.mission_id} #{event.sequence} {event.service} {event.type}"
        f" v{event.version} {event.id} {payload}"
    )


async def _print_events(
    url: str, tenant: str, mission: str | None, follow: bool, as_json: bool
) -> None:
    client = await connect(url)
    try:
        js = client.jetstream()
        try:
            await ensure_readable(client, tenant)
            async for message in read_events(js, tenant, mission, follow=follow):
                text = message.event.to_json() if as_json else _line(message.event)
                click.echo(text)
        except nats.js.errors.NotFoundError:
            _fail(f"no events for tenant {tenant!r}: no stream {stream_name(tenant)}", 1)
    finally:
        await client.close()


@click.group(invoke_without_command=True)
@click.option("--tenant", help="The tenant whose events to read. Default: the token's tenant.")
@click.option("--mission", help="Only this mission's events ('_' for events of no mission).")
@click.option("--follow", is_flag=True, help="Keep printing new events as they arrive.")
@click.option("--json", "as_json", is_flag=True, help="One event per line as JSON (JSON Lines).")
@click.option("--nats-url", help=f"The NATS server (default: ${NATS_URL_VARIABLE}).")
@click.pass_context
def events(
    ctx: click.Context,
    tenant: str | None,
    mission: str | None,
    follow: bool,
    as_json: bool,
    nats_url: str | None,
) -> None:
    """Print a tenant's events from JetStream, oldest first."""
    if ctx.invoked_subcommand is not None:
        return
    tenant = resolve_tenant(tenant, required=True)
    try:
        validate_tenant(tenant)
        if mission is not None:
            validate_mission_id(mission)
    except EventNameError as error:
        raise click.BadParameter(str(error)) from error
    url = resolve_nats_url(nats_url)
    _run(_print_events(url, tenant, mission, follow, as_json), url)


def _store_names(home: Path, database_url: str | None, names: tuple[str, ...]) -> list[str]:
    if names:
        return list(names)
    if database_url:
        raise click.UsageError("with RUSTCHAIN_DATABASE_URL set, name the stores with --store")
    return sorted(p.name.removesuffix(SQLITE_SUFFIX) for p in home.glob(f"*{SQLITE_SUFFIX}"))


async def _reconcile_all(url: str, settings: list[EventStoreSettings]) -> list[str]:
    client = await connect(url)
    lines = []
    try:
        js = client.jetstream()
        for store_settings in settings:
            try:
                store = open_event_store(store_settings)
            except (EventStoreError, PersistenceError) as error:
                raise EventStoreError(f"{describe_store(store_settings)}: {error}") from error
            try:
                for result in await reconcile_store(store, js, stream_settings()):
                    lines.append(
                        f"{store_settings.name} {result.tenant}: {result.stored} stored,"
                        f" {result.in_jetstream} in JetStream, {result.republished} re-published"
                        + (
                            f" ({result.deduplicated} dropped as copies by the dedup window)"
                            if result.deduplicated
                            else ""
                        )
                    )
            finally:
                store.close()
    finally:
        await client.close()
    return lines


@events.command()
@click.option("--store", "stores", multiple=True, help="A service's event store (repeatable).")
@click.option("--nats-url", help=f"The NATS server (default: ${NATS_URL_VARIABLE}).")
def reconcile(stores: tuple[str, ...], nats_url: str | None) -> None:
    """Compare JetStream with the event stores and publish whatever JetStream lacks."""
    base = EventStoreSettings.from_environ("events")
    names = _store_names(base.home, base.database_url, stores)
    if not names:
        _fail(f"no event stores under {base.home}", exit_codes.MISSION_AT_FAULT)
    settings = [EventStoreSettings.from_environ(name) for name in names]
    url = resolve_nats_url(nats_url)
    try:
        lines = _run(_reconcile_all(url, settings), url)
    except (EventStoreError, PersistenceError) as error:
        _fail(f"event store unreachable: {error}", exit_codes.UNREACHABLE)
    except ArtifactUploadError as error:
        _fail(f"an artifact could not be re-published: {error}", exit_codes.MISSION_AT_FAULT)
    for line in lines:
        click.echo(line)


@events.command()
@click.option("--store", "store_name", required=True, help="The service whose events to relay.")
@click.option("--nats-url", help=f"The NATS server (default: ${NATS_URL_VARIABLE}).")
@click.option("--until-caught-up", is_flag=True, help="Stop once every stored event is relayed.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to catch up in.")
def relay(store_name: str, nats_url: str | None, until_caught_up: bool, timeout: float) -> None:
    """Relay a service's stored events to JetStream until stopped (SIGINT/SIGTERM)."""
    settings = EventStoreSettings.from_environ(store_name)
    url = resolve_nats_url(nats_url)
    try:
        # Run by hand, the relay's back-off lines stay lines of text (RUSTCHAIN_LOG_FORMAT=json).
        with telemetry_for("relay", log_format=TEXT):
            line = _run(relay_store(settings, url, until_caught_up, timeout), url)
    except TelemetrySettingError as error:
        _fail(str(error), exit_codes.USAGE)
    except (EventTooLargeError, ElectionSettingError) as error:
        _fail(str(error), exit_codes.USAGE)
    except (EventStoreError, PersistenceError) as error:
        _fail(
            f"event store unreachable: {describe_store(settings)}: {error}", exit_codes.UNREACHABLE
        )
    click.echo(line)


@events.command("auth-callout")
@click.option("--nats-url", help=f"The NATS server (default: ${NATS_URL_VARIABLE}).")
def auth_callout(nats_url: str | None) -> None:
    """Authorise each NATS connection by its RustChain token, until stopped (SIGINT/SIGTERM).

    The embedded deployment runs it; the server must name its issuer (docs/security.md).
    """
    home = rustchain_home()
    secrets = callout_secrets(home)
    try:
        key = token_public_key(home)
    except SigningKeyError as error:
        _fail(str(error), exit_codes.MISSION_AT_FAULT)
    if secrets is None or key is None:
        _fail(
            f"no NATS callout secrets or token public key under {home}: `rustchain up` creates"
            " them",
            exit_codes.MISSION_AT_FAULT,
        )
    url = resolve_nats_url(nats_url)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, stop.set)
        await serve_callout(url, secrets, key, stop)

    _run(serve(), url)
