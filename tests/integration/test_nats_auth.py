"""Per-tenant NATS access against a real nats-server whose connections our auth callout decides.

Each test starts the embedded server configured for the callout, runs the callout service in the
test's own event loop, relays two tenants' events with the admin's token, and then connects as
other credentials to see what the server lets them do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nats
import nats.errors
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nats.aio.client import Client

from rustchain.cli import exit_codes
from rustchain.cli.app import app
from rustchain.domain.access.credentials import Claims, Role
from rustchain.domain.access.nats_permissions import inbox_prefix
from rustchain.domain.events.checkpoint import Checkpoint, parse_checkpoint
from rustchain.domain.events.names import checkpoint_stream_name, checkpoint_subject
from rustchain.domain.plans.artifacts import sha256_of
from rustchain.platform.credentials.tokens import TOKEN_LIFETIME_SECONDS, TOKEN_VARIABLE, issue
from rustchain.platform.nats.artifact_relay import download, ensure_bucket
from rustchain.platform.nats.auth_callout import CalloutSecrets, callout_secrets, serve_callout
from rustchain.platform.nats.checkpoint_stream import CheckpointPublisher, latest_published
from rustchain.platform.nats.jetstream import (
    NatsCredentials,
    NatsPermissionError,
    connect,
    ensure_readable,
    read_events,
)
from rustchain.platform.nats.relay import JetStreamRelay
from rustchain.platform.nats.server import NatsServer, NatsServerSettings
from rustchain.platform.storage.checkpoints import sign_checkpoint
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from tests.integration.event_helpers import append_in_batches, many_drafts

SIGNING_KEY = Ed25519PrivateKey.generate()
KEY = SIGNING_KEY.public_key()
ADMIN = Claims(sub="admin", role=Role.ADMIN)
ACME = Claims(sub="acme-ci", role=Role.TENANT, tenant="acme")
GLOBEX_AUDITOR = Claims(sub="auditor-1", role=Role.AUDITOR, tenants=["globex"])


@dataclass(frozen=True)
class SecuredNats:
    """A running server that authorises every connection by the callout, with two tenants'
    events in JetStream."""

    url: str
    callout: CalloutSecrets
    home: Path

    def token(self, claims: Claims, expires_in: float | None = None) -> str:
        return issue(SIGNING_KEY, claims, expires_in=expires_in or TOKEN_LIFETIME_SECONDS)


@asynccontextmanager
async def callout_running(secured: SecuredNats) -> AsyncIterator[None]:
    """The callout service answering in this event loop for the duration of the block."""
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve_callout(secured.url, secured.callout, KEY, stop, ready))
    try:
        await asyncio.wait_for(ready.wait(), timeout=30)
        yield
    finally:
        stop.set()
        await task


def run_with_callout(secured: SecuredNats, scenario: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        async with callout_running(secured):
            await scenario()

    asyncio.run(main())


@pytest.fixture
def secured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SecuredNats]:
    callout = callout_secrets(tmp_path, create=True)
    assert callout is not None
    server = NatsServer(NatsServerSettings(store_dir=tmp_path / "nats", callout=callout))
    server.start()
    monkeypatch.setenv("RUSTCHAIN_HOME", str(tmp_path))
    monkeypatch.delenv("NATS_URL", raising=False)
    secured = SecuredNats(server.url, callout, tmp_path)
    # The relay presents the process's token: the admin's, as in a deployment.
    monkeypatch.setenv(TOKEN_VARIABLE, secured.token(ADMIN))
    store = open_event_store(EventStoreSettings(name="executor", home=tmp_path))
    try:
        append_in_batches(store, many_drafts(20, tenants=("acme", "globex"), missions=2))

        async def relay() -> None:
            await JetStreamRelay(store, server.url).catch_up(timeout=30)

        run_with_callout(secured, relay)
    finally:
        store.close()
    yield secured
    server.stop()


async def _connect(secured: SecuredNats, claims: Claims) -> Client:
    return await connect(secured.url, credentials=NatsCredentials.of_token(secured.token(claims)))


async def _raw(
    secured: SecuredNats, claims: Claims, refusals: list[str], arrived: asyncio.Event
) -> Client:
    """A plain nats-py client with the token, recording what the server refuses it."""

    async def record(error: Exception) -> None:
        refusals.append(str(error).lower())
        arrived.set()

    return await nats.connect(
        secured.url,
        token=secured.token(claims),
        inbox_prefix=inbox_prefix(claims),
        error_cb=record,
        allow_reconnect=False,
    )


def test_a_tenant_reads_its_own_events_and_only_those(secured: SecuredNats) -> None:
    async def scenario() -> None:
        client = await _connect(secured, ACME)
        try:
            await ensure_readable(client, "acme")
            events = [m.event async for m in read_events(client.jetstream(), "acme")]
        finally:
            await client.close()
        assert len(events) == 10
        assert {event.tenant for event in events} == {"acme"}

    run_with_callout(secured, scenario)


def test_a_tenant_cannot_read_another_tenants_stream(secured: SecuredNats) -> None:
    async def scenario() -> None:
        client = await _connect(secured, ACME)
        try:
            with pytest.raises(NatsPermissionError) as refused:
                await ensure_readable(client, "globex")
        finally:
            await client.close()
        assert "globex" in str(refused.value)
        assert "m0" not in str(refused.value)

    run_with_callout(secured, scenario)


@pytest.mark.parametrize(
    ("action", "refused"),
    [
        ("subscribe to another tenant's subjects", 'subscription to "rustchain.globex.>"'),
        ("subscribe to every inbox", 'subscription to "_inbox.>"'),
        ("publish an event into its own stream", 'publish to "rustchain.acme.m0.executor.x"'),
        ("list the streams", 'publish to "$js.api.stream.names"'),
        ("create a consumer on another stream", "rustchain_globex"),
    ],
)
def test_a_tenants_connection_is_refused(secured: SecuredNats, action: str, refused: str) -> None:
    async def scenario() -> None:
        refusals: list[str] = []
        arrived = asyncio.Event()
        client = await _raw(secured, ACME, refusals, arrived)
        try:
            if action == "subscribe to another tenant's subjects":
                await client.subscribe("rustchain.globex.>")
            elif action == "subscribe to every inbox":
                await client.subscribe("_INBOX.>")
            elif action == "publish an event into its own stream":
                await client.publish("rustchain.acme.m0.executor.x", b"{}")
            elif action == "list the streams":
                # JetStream API requests carry a reply subject (without one the server drops them).
                await client.publish("$JS.API.STREAM.NAMES", b"{}", reply=client.new_inbox())
            else:
                subject = "$JS.API.CONSUMER.CREATE.RUSTCHAIN_GLOBEX"
                await client.publish(subject, b"{}", reply=client.new_inbox())
            # The server answers with an -ERR, in its own time.
            await asyncio.wait_for(arrived.wait(), timeout=30)
        finally:
            await client.close()
        assert any("permissions violation" in r and refused in r for r in refusals), refusals

    run_with_callout(secured, scenario)


def test_an_auditor_reads_the_tenants_it_is_granted_and_no_other(secured: SecuredNats) -> None:
    async def scenario() -> None:
        client = await _connect(secured, GLOBEX_AUDITOR)
        try:
            await ensure_readable(client, "globex")
            events = [m.event async for m in read_events(client.jetstream(), "globex")]
            with pytest.raises(NatsPermissionError):
                await ensure_readable(client, "acme")
        finally:
            await client.close()
        assert len(events) == 10
        assert {event.tenant for event in events} == {"globex"}

    run_with_callout(secured, scenario)


@pytest.mark.parametrize("credential", ["none", "expired", "forged", "garbage"])
def test_a_connection_without_a_valid_token_is_refused(
    secured: SecuredNats, credential: str
) -> None:
    tokens = {
        "none": None,
        "expired": issue(SIGNING_KEY, ACME, now=time.time() - 3600, expires_in=60),
        "forged": issue(Ed25519PrivateKey.generate(), ADMIN),
        "garbage": "not-a-token",
    }

    async def scenario() -> None:
        with pytest.raises(NatsPermissionError, match="refused the credential"):
            await connect(secured.url, credentials=NatsCredentials(tokens[credential]))

    run_with_callout(secured, scenario)


def test_a_connection_ends_when_its_token_expires(secured: SecuredNats) -> None:
    async def scenario() -> None:
        closed = asyncio.Event()
        token = secured.token(ACME, expires_in=2)
        client = await connect(
            secured.url, closed=closed, credentials=NatsCredentials.of_token(token)
        )
        # The server, not the client, ends the connection at the user JWT's expiry.
        await asyncio.wait_for(closed.wait(), timeout=30)
        assert client.is_closed

    run_with_callout(secured, scenario)


def test_the_events_verb_refuses_another_tenants_events(secured: SecuredNats) -> None:
    acme = secured.token(ACME)

    def events(*tenant: str) -> tuple[int, str]:
        async def invoke() -> tuple[int, str]:
            async with callout_running(secured):
                # The verb runs its own event loop, so it runs in a thread beside the callout.
                result = await asyncio.to_thread(
                    CliRunner().invoke,
                    app,
                    ["--token", acme, "events", *tenant, "--nats-url", secured.url],
                )
                return result.exit_code, result.output

        return asyncio.run(invoke())

    # The verb refuses before connecting; the server's own refusal is tested above.
    code, output = events("--tenant", "globex")
    assert code == exit_codes.USAGE
    assert output.startswith("rustchain: --tenant globex is not the token's tenant (acme)")

    for given in (("--tenant", "acme"), ()):  # without --tenant, the token's tenant
        code, output = events(*given)
        assert code == exit_codes.OK, output
        assert output.count("\n") == 10
        assert "globex" not in output


def test_the_events_verb_with_a_forged_token_is_unauthenticated(secured: SecuredNats) -> None:
    forged = issue(Ed25519PrivateKey.generate(), ADMIN)

    async def invoke() -> tuple[int, str]:
        async with callout_running(secured):
            result = await asyncio.to_thread(
                CliRunner().invoke,
                app,
                ["--token", forged, "events", "--tenant", "acme", "--nats-url", secured.url],
            )
            return result.exit_code, result.output

    code, output = asyncio.run(invoke())
    assert code == exit_codes.USAGE
    assert output.startswith("rustchain: unauthenticated: NATS at ")
    assert output.count("\n") == 1


def _checkpoint(tenant: str) -> Checkpoint:
    unsigned = Checkpoint(
        store="executor", tenant=tenant, size=10, root=b"\x01" * 32, time=datetime.now(UTC)
    )
    return sign_checkpoint(Ed25519PrivateKey.generate(), unsigned)


async def _publish_checkpoints(secured: SecuredNats) -> None:
    """The relay's part, with the admin's token: one checkpoint for each tenant."""
    publisher = CheckpointPublisher(secured.url)
    try:
        await publisher.publish([_checkpoint("acme"), _checkpoint("globex")])
    finally:
        await publisher.close()


def test_a_tenant_reads_its_own_checkpoints_and_no_other_tenants(
    secured: SecuredNats, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        await _publish_checkpoints(secured)
        # `latest_published` connects with the process's token, as `audit verify` does.
        monkeypatch.setenv(TOKEN_VARIABLE, secured.token(ACME))
        own = await latest_published(secured.url, "acme", ["executor"])
        assert [parse_checkpoint(note).tenant for note in own] == ["acme"]

        refusals: list[str] = []
        arrived = asyncio.Event()
        client = await _raw(secured, ACME, refusals, arrived)
        try:
            # JetStream's direct get of another tenant's latest checkpoint: refused by the server.
            subject = f"$JS.API.STREAM.MSG.GET.{checkpoint_stream_name('globex')}"
            await client.publish(subject, b"{}", reply=client.new_inbox())
            await asyncio.wait_for(arrived.wait(), timeout=30)
        finally:
            await client.close()
        assert any(
            "permissions violation" in r and checkpoint_stream_name("globex").lower() in r
            for r in refusals
        ), refusals

    run_with_callout(secured, scenario)


def test_a_tenant_cannot_publish_a_checkpoint_of_its_own(secured: SecuredNats) -> None:
    """Only the relays sign and publish checkpoints: a tenant could otherwise plant one."""

    async def scenario() -> None:
        await _publish_checkpoints(secured)
        refusals: list[str] = []
        arrived = asyncio.Event()
        client = await _raw(secured, ACME, refusals, arrived)
        try:
            forged = _checkpoint("acme")
            await client.publish(checkpoint_subject("acme", "executor"), forged.note().encode())
            await asyncio.wait_for(arrived.wait(), timeout=30)
        finally:
            await client.close()
        assert any(
            "permissions violation" in r and checkpoint_subject("acme", "executor").lower() in r
            for r in refusals
        ), refusals

    run_with_callout(secured, scenario)


def test_an_auditor_reads_the_checkpoints_of_the_tenants_it_is_granted(
    secured: SecuredNats, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        await _publish_checkpoints(secured)
        monkeypatch.setenv(TOKEN_VARIABLE, secured.token(GLOBEX_AUDITOR))
        granted = await latest_published(secured.url, "globex", ["executor"])
        assert [parse_checkpoint(note).tenant for note in granted] == ["globex"]


def test_a_tenant_reads_its_own_artifacts_and_not_another_tenants_nor_writes_them(
    secured: SecuredNats,
) -> None:
    contents = {tenant: f"{tenant} output ".encode() * 40_000 for tenant in ("acme", "globex")}

    async def scenario() -> None:
        admin = await _connect(secured, ADMIN)
        try:
            for tenant, data in contents.items():
                bucket = await ensure_bucket(admin.jetstream(), tenant)
                await bucket.put(sha256_of(data), data)
        finally:
            await admin.close()
        client = await _connect(secured, ACME)
        try:
            own = await download(client.jetstream(), "acme", sha256_of(contents["acme"]))
        finally:
            await client.close()
        assert own == contents["acme"]

        refusals: list[str] = []
        arrived = asyncio.Event()
        raw = await _raw(secured, ACME, refusals, arrived)
        try:
            other = asyncio.ensure_future(
                download(raw.jetstream(), "globex", sha256_of(contents["globex"]))
            )
            await asyncio.wait_for(arrived.wait(), timeout=10)
            other.cancel()
            arrived.clear()
            await raw.publish("$O.ARTIFACTS_ACME.C.forged", b"forged")
            await asyncio.wait_for(arrived.wait(), timeout=10)
        finally:
            await raw.close()
        assert any("obj_artifacts_globex" in refusal for refusal in refusals), refusals
        assert any('publish to "$o.artifacts_acme.c.forged"' in r for r in refusals), refusals

    run_with_callout(secured, scenario)
