"""`rustchain events` and `rustchain events reconcile` against a real nats-server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rustchain.cli import exit_codes
from rustchain.cli.app import app
from rustchain.domain.events.envelope import decode_event
from rustchain.platform.deployment.endpoints import Endpoints, write_endpoints
from rustchain.platform.nats.relay import JetStreamRelay
from rustchain.platform.nats.server import NatsServer, free_port
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from tests.integration.event_helpers import (
    append_in_batches,
    assert_stream_matches_store,
    many_drafts,
    stream_count,
    stream_messages,
)

MISSIONS = [f"m{n}" for n in range(10)]


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A RustChain home of the test's own, no database URL, no NATS_URL."""
    monkeypatch.setenv("RUSTCHAIN_HOME", str(tmp_path))
    monkeypatch.delenv("RUSTCHAIN_DATABASE_URL", raising=False)
    monkeypatch.delenv("NATS_URL", raising=False)
    return tmp_path


def _relayed_store(home: Path, url: str, count: int) -> EventStoreSettings:
    settings = EventStoreSettings(name="executor", home=home)
    store = open_event_store(settings)
    try:
        append_in_batches(store, many_drafts(count, tenants=("acme", "globex")))
        asyncio.run(JetStreamRelay(store, url).catch_up(timeout=30))
    finally:
        store.close()
    return settings


def test_events_prints_a_tenants_events_as_json_lines(
    nats_server: NatsServer, cli_env: Path
) -> None:
    settings = _relayed_store(cli_env, nats_server.url, 60)

    result = CliRunner().invoke(
        app, ["events", "--tenant", "acme", "--json", "--nats-url", nats_server.url]
    )
    one = CliRunner().invoke(
        app, ["events", "--tenant", "acme", "--mission", "m3", "--nats-url", nats_server.url]
    )

    assert result.exit_code == 0, result.output
    events = [decode_event(json.loads(line)) for line in result.output.splitlines()]
    store = open_event_store(settings)
    try:
        expected = [e for m in MISSIONS for e in store.mission_events("acme", m)]
    finally:
        store.close()
    assert sorted(events, key=lambda e: e.id) == sorted(expected, key=lambda e: e.id)
    assert one.exit_code == 0, one.output
    assert len(one.output.splitlines()) == 3
    assert all(" m3 #" in line and "StepSucceeded" in line for line in one.output.splitlines())


def test_events_needs_a_valid_tenant(cli_env: Path) -> None:
    missing = CliRunner().invoke(app, ["events"])
    invalid = CliRunner().invoke(app, ["events", "--tenant", "a.b"])

    assert missing.exit_code == exit_codes.USAGE
    assert invalid.exit_code == exit_codes.USAGE
    assert "invalid tenant 'a.b'" in invalid.output


def test_unreachable_nats_is_one_line_naming_the_url_and_exit_3(cli_env: Path) -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    rustchain = Path(sys.executable).parent / "rustchain"

    result = subprocess.run(
        [str(rustchain), "events", "--tenant", "acme", "--nats-url", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == exit_codes.UNREACHABLE
    assert result.stderr.count("\n") == 1
    assert url in result.stderr
    assert "Traceback" not in result.stderr


def test_reconcile_publishes_only_what_jetstream_lacks(
    nats_server: NatsServer, cli_env: Path
) -> None:
    settings = _relayed_store(cli_env, nats_server.url, 100)
    store = open_event_store(settings)
    try:
        # Events committed while no relay ran: JetStream lacks them.
        append_in_batches(store, many_drafts(40, tenants=("acme", "initech")))
        first = CliRunner().invoke(app, ["events", "reconcile", "--nats-url", nats_server.url])
        again = CliRunner().invoke(app, ["events", "reconcile", "--nats-url", nats_server.url])

        assert first.exit_code == 0, first.output
        assert first.output.splitlines() == [
            "executor acme: 70 stored, 50 in JetStream, 20 re-published",
            "executor globex: 50 stored, 50 in JetStream, 0 re-published",
            "executor initech: 20 stored, 0 in JetStream, 20 re-published",
        ]
        assert "0 re-published" in again.output
        assert "20 re-published" not in again.output
        for tenant in ("acme", "globex", "initech"):
            messages = asyncio.run(stream_messages(nats_server.url, tenant))
            assert_stream_matches_store(messages, store, tenant, MISSIONS)
    finally:
        store.close()


def test_follow_prints_events_relayed_after_it_started(
    nats_server: NatsServer, cli_env: Path
) -> None:
    settings = _relayed_store(cli_env, nats_server.url, 4)
    rustchain = Path(sys.executable).parent / "rustchain"

    async def follow() -> list[str]:
        reader = await asyncio.create_subprocess_exec(
            str(rustchain),
            *("events", "--tenant", "acme", "--follow", "--json"),
            *("--nats-url", nats_server.url),
            stdout=asyncio.subprocess.PIPE,
        )
        assert reader.stdout is not None
        try:
            lines = [await asyncio.wait_for(reader.stdout.readline(), 30) for _ in range(2)]
            store = open_event_store(settings)
            try:
                append_in_batches(store, many_drafts(6, tenants=("acme",)))
                await JetStreamRelay(store, nats_server.url).catch_up(timeout=30)
            finally:
                store.close()
            lines += [await asyncio.wait_for(reader.stdout.readline(), 30) for _ in range(6)]
            return [line.decode() for line in lines]
        finally:
            reader.kill()
            await reader.wait()

    lines = asyncio.run(follow())

    events = [decode_event(json.loads(line)) for line in lines]
    assert [e.tenant for e in events] == ["acme"] * 8
    assert len({e.id for e in events}) == 8


def test_a_tenant_without_a_stream_is_one_line_and_exit_1(
    nats_server: NatsServer, cli_env: Path
) -> None:
    result = CliRunner().invoke(
        app, ["events", "--tenant", "nobody", "--nats-url", nats_server.url]
    )

    assert result.exit_code == exit_codes.MISSION_AT_FAULT
    assert result.output == "rustchain: no events for tenant 'nobody': no stream RUSTCHAIN_NOBODY\n"


def test_reconcile_with_an_unreachable_database_names_it_and_exits_3(
    nats_server: NatsServer, cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql://postgres:secret@127.0.0.1:{free_port()}/nothing"
    monkeypatch.setenv("RUSTCHAIN_DATABASE_URL", url)

    result = CliRunner().invoke(
        app, ["events", "reconcile", "--store", "executor", "--nats-url", nats_server.url]
    )

    assert result.exit_code == exit_codes.UNREACHABLE
    assert result.output.startswith("rustchain: event store unreachable: PostgreSQL at 127.0.0.1:")
    assert "secret" not in result.output
    assert result.output.count("\n") == 1


def _rustchain(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "rustchain"), *args]


def test_relay_verb_relays_until_stopped_and_reports(
    nats_server: NatsServer, cli_env: Path
) -> None:
    store = open_event_store(EventStoreSettings(name="executor", home=cli_env))
    try:
        append_in_batches(store, many_drafts(300))
    finally:
        store.close()

    async def relay_until_relayed() -> tuple[int | None, bytes]:
        process = await asyncio.create_subprocess_exec(
            *_rustchain("events", "relay", "--store", "executor", "--nats-url", nats_server.url),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while await stream_count(nats_server.url, "acme") < 300:
                assert loop.time() < deadline, "the relay did not relay 300 events in 60 s"
                assert process.returncode is None, "the relay stopped by itself"
            process.send_signal(signal.SIGTERM)
            output, _ = await asyncio.wait_for(process.communicate(), 30)
            return process.returncode, output
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    returncode, output = asyncio.run(relay_until_relayed())

    assert returncode == 0
    assert output.decode().startswith("executor: relayed 300 event(s)")
    messages = asyncio.run(stream_messages(nats_server.url, "acme"))
    assert len(messages) == 300
    store = open_event_store(EventStoreSettings(name="executor", home=cli_env))
    try:
        assert_stream_matches_store(messages, store, "acme", MISSIONS)
        assert store.tracked_position("jetstream_relay") == store.last_position()
    finally:
        store.close()


def test_relay_verb_that_cannot_catch_up_says_so_and_exits_3(cli_env: Path) -> None:
    store = open_event_store(EventStoreSettings(name="executor", home=cli_env))
    try:
        append_in_batches(store, many_drafts(3))
    finally:
        store.close()
    url = f"nats://127.0.0.1:{free_port()}"

    result = subprocess.run(
        [
            *_rustchain("events", "relay", "--store", "executor", "--nats-url", url),
            *("--until-caught-up", "--timeout", "1"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == exit_codes.UNREACHABLE
    *pauses, last = result.stderr.splitlines()
    assert last.startswith(f"rustchain: relay to {url} not caught up after 1 s")
    assert pauses, "each back-off is logged"
    assert all(line.startswith(f"relay to {url} paused") for line in pauses)


def test_events_finds_the_running_deployments_nats_in_its_endpoints_file(
    nats_server: NatsServer, cli_env: Path
) -> None:
    _relayed_store(cli_env, nats_server.url, 4)
    write_endpoints(cli_env, Endpoints({}, nats_server.url, os.getpid()))

    result = CliRunner().invoke(app, ["events", "--tenant", "acme", "--json"])

    assert result.exit_code == exit_codes.OK, result.output
    assert result.output.count("\n") == 2


def test_relay_refuses_a_server_whose_max_payload_is_below_the_event_limit(
    nats_server: NatsServer, cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_event_store(EventStoreSettings(name="executor", home=cli_env))
    try:
        append_in_batches(store, many_drafts(3))
    finally:
        store.close()
    monkeypatch.setenv("RUSTCHAIN_MAX_EVENT_BYTES", "2000000")

    result = CliRunner().invoke(
        app,
        [
            *("events", "relay", "--store", "executor", "--nats-url", nats_server.url),
            *("--until-caught-up", "--timeout", "10"),
        ],
    )

    assert result.exit_code == exit_codes.USAGE
    assert "1,048,576 bytes (max_payload)" in result.output
    assert "2,000,000 bytes (RUSTCHAIN_MAX_EVENT_BYTES)" in result.output
    assert result.output.count("\n") == 1
    assert asyncio.run(stream_count(nats_server.url, "acme")) == 0
