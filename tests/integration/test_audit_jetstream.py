"""`rustchain audit verify` compares the stores with a real JetStream and locates disagreements."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

from rustchain.domain.events.envelope import EventDraft
from rustchain.domain.events.names import stream_name
from rustchain.platform.nats.jetstream import connect
from rustchain.platform.nats.relay import JetStreamRelay
from rustchain.platform.nats.server import NatsServer
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from tests.e2e.test_run import rustchain
from tests.integration.event_helpers import stream_messages


def _run_hello(home: Path) -> str:
    assert rustchain(home, "run", "missions/hello.yaml", "--var", "who=Ada").returncode == 0
    [mission] = re.findall(r"[0-9a-f]{32}", rustchain(home, "missions").stdout)
    return mission


def _relay_all(home: Path, url: str) -> None:
    for name in ("executor", "verifier"):
        store = open_event_store(EventStoreSettings(name=name, home=home))
        try:
            asyncio.run(JetStreamRelay(store, url).catch_up(timeout=30))
        finally:
            store.close()


async def _delete_from_stream(url: str, event_id: str) -> None:
    [sequence] = [m.sequence for m in await stream_messages(url, "default") if m.msg_id == event_id]
    client = await connect(url)
    try:
        assert await client.jetstream().delete_msg(stream_name("default"), sequence)
    finally:
        await client.close()


def test_verify_proves_the_stores_and_jetstream_agree_then_locates_a_deleted_event(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    mission = _run_hello(tmp_path)
    _relay_all(tmp_path, nats_server.url)

    agreed = rustchain(tmp_path, "audit", "verify", "--jetstream", NATS_URL=nats_server.url)
    store = open_event_store(EventStoreSettings(name="executor", home=tmp_path))
    try:
        third = store.mission_events("default", mission)[2]
    finally:
        store.close()
    asyncio.run(_delete_from_stream(nats_server.url, third.id))
    broken = rustchain(tmp_path, "audit", "verify", mission, NATS_URL=nats_server.url)

    assert agreed.returncode == 0, agreed.stderr
    assert "compared 9 stored events of 2 chain(s) with 9 in JetStream" in agreed.stderr
    assert "untouched, the stores and JetStream agree" in agreed.stdout
    assert broken.returncode == 1
    assert (
        f"broken: default/{mission}: executor chain, position 3: event {third.id}"
        f" ({third.type}) is in the store but missing from JetStream"
    ) in broken.stderr
    assert "1 problem(s) in 9 events of 1 mission(s)" in broken.stderr


def test_verify_locates_an_event_stored_but_never_relayed(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    mission = _run_hello(tmp_path)
    _relay_all(tmp_path, nats_server.url)
    store = open_event_store(EventStoreSettings(name="executor", home=tmp_path))
    try:
        [late] = store.append(
            [
                EventDraft(
                    id=str(uuid.uuid4()),
                    tenant="default",
                    mission_id=mission,
                    service="executor",
                    aggregate_id=mission,
                    aggregate_version=8,
                    type="MissionCancelRequested",
                    occurred_at=datetime.now(UTC),
                    payload={"reason": "appended after the relay caught up"},
                )
            ]
        )
    finally:
        store.close()

    result = rustchain(tmp_path, "audit", "verify", NATS_URL=nats_server.url)
    skipped = rustchain(tmp_path, "audit", "verify", "--no-jetstream", NATS_URL=nats_server.url)

    assert result.returncode == 1
    assert (
        f"broken: default/{mission}: executor chain, position {late.sequence}: event {late.id}"
        " (MissionCancelRequested) is in the store but missing from JetStream: not relayed yet,"
        " or removed from the stream"
    ) in result.stderr
    assert skipped.returncode == 0, skipped.stderr
    assert "JetStream not compared (--no-jetstream)" in skipped.stderr


def test_verify_says_the_comparison_was_skipped_when_nats_is_unreachable(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    _run_hello(tmp_path)
    url = nats_server.url
    nats_server.stop()

    quiet = rustchain(tmp_path, "audit", "verify", NATS_URL=url)
    required = rustchain(tmp_path, "audit", "verify", "--jetstream", NATS_URL=url)

    assert quiet.returncode == 0, quiet.stderr
    assert f"jetstream: the JetStream comparison was skipped: cannot reach NATS at {url}" in (
        quiet.stderr
    )
    assert required.returncode == 3
    assert "--jetstream: the comparison with JetStream failed" in required.stderr
