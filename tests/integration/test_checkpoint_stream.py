"""Checkpoints published to a real JetStream survive an attacker who also empties the store's."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys

from rustchain.audit.log_proofs import prove_log, read_tenant_log
from rustchain.domain.events.names import checkpoint_stream_name
from rustchain.platform.credentials.signing_keys import CHECKPOINT_KEYS, ensure_key_pair
from rustchain.platform.nats.checkpoint_stream import CheckpointPublisher, latest_published
from rustchain.platform.nats.jetstream import connect
from rustchain.platform.nats.server import NatsServer
from rustchain.platform.storage.checkpoints import (
    Checkpointer,
    CheckpointSettings,
    signed_checkpoints,
)
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store, sqlite_path
from tests.conditions import wait_until_sync
from tests.e2e.test_run import rustchain
from tests.integration.test_checkpoints import KEY, TENANT, _drafts, _reseq, _rewrite, _truncate


async def _publish_all(url: str, checkpointer: Checkpointer) -> None:
    publisher = CheckpointPublisher(url)
    try:
        await publisher.publish(checkpointer.advance())
    finally:
        await publisher.close()


async def _messages(url: str, tenant: str) -> int:
    client = await connect(url)
    try:
        info = await client.jetstream().stream_info(checkpoint_stream_name(tenant))
        return info.state.messages
    finally:
        await client.close()


def test_the_latest_published_checkpoint_catches_a_truncation_after_the_store_lost_its_own(
    sqlite_settings: EventStoreSettings, nats_server: NatsServer
) -> None:
    store = open_event_store(sqlite_settings)
    drafts = _drafts()
    checkpointer = Checkpointer(
        store, sqlite_settings.name, KEY, CheckpointSettings(every_events=1)
    )
    for draft in drafts:
        store.append([draft])
        asyncio.run(_publish_all(nats_server.url, checkpointer))
    store.close()
    # The attacker cuts acme's last 3 events and deletes every checkpoint kept in the store.
    _rewrite(sqlite_settings, _reseq(_truncate(3)(drafts)))
    with sqlite3.connect(sqlite_path(sqlite_settings)) as database:
        database.execute("DELETE FROM stored_checkpoints")
    database.close()

    notes = asyncio.run(latest_published(nats_server.url, TENANT, [sqlite_settings.name]))
    reopened = open_event_store(sqlite_settings)
    try:
        log = read_tenant_log(reopened, sqlite_settings.name, TENANT)
        kept = reopened.checkpoint_notes(TENANT)
    finally:
        reopened.close()
    proof = prove_log(log, signed_checkpoints(notes, KEY.public_key()))

    assert asyncio.run(_messages(nats_server.url, TENANT)) == len(drafts) // 2
    assert kept == []
    assert len(notes) == 1
    assert len(proof.problems) == 1
    assert (
        "does not extend the checkpoint of size 12 (the log holds 3 event(s) fewer)"
        in (proof.problems[0])
    )


def test_a_publisher_keeps_checkpoints_through_an_outage_and_sends_them_later(
    sqlite_settings: EventStoreSettings, nats_server: NatsServer
) -> None:
    store = open_event_store(sqlite_settings)
    try:
        store.append(_drafts()[:2])
        signed = Checkpointer(store, sqlite_settings.name, KEY).advance()
    finally:
        store.close()

    async def scenario() -> list[str]:
        publisher = CheckpointPublisher(nats_server.url)
        nats_server.stop()
        await publisher.publish(signed)
        nats_server.start()
        await publisher.publish([])
        await publisher.close()
        return await latest_published(nats_server.url, TENANT, [sqlite_settings.name])

    notes = asyncio.run(scenario())

    assert [n.splitlines()[1] for n in notes] == ["1"]


def test_the_relay_verb_signs_keeps_and_publishes_the_checkpoints_of_its_store(
    sqlite_settings: EventStoreSettings, nats_server: NatsServer
) -> None:
    home = sqlite_settings.home
    ensure_key_pair(home, CHECKPOINT_KEYS)
    store = open_event_store(sqlite_settings)
    try:
        store.append(_drafts())
    finally:
        store.close()

    result = rustchain(
        home,
        "events",
        "relay",
        "--store",
        "executor",
        "--until-caught-up",
        NATS_URL=nats_server.url,
    )
    notes = asyncio.run(latest_published(nats_server.url, TENANT, ["executor"]))
    reopened = open_event_store(sqlite_settings)
    try:
        kept = reopened.checkpoint_notes(TENANT)
    finally:
        reopened.close()

    assert result.returncode == 0, result.stderr
    assert "not checkpointed" not in result.stdout
    assert kept == notes
    assert notes[0].startswith("rustchain/executor/acme\n12\n")


def test_a_running_relay_checkpoints_new_events_within_the_configured_seconds(
    sqlite_settings: EventStoreSettings, nats_server: NatsServer
) -> None:
    home = sqlite_settings.home
    ensure_key_pair(home, CHECKPOINT_KEYS)
    store = open_event_store(sqlite_settings)
    store.append(_drafts()[:2])
    environ = {
        **os.environ,
        "RUSTCHAIN_HOME": str(home),
        "NATS_URL": nats_server.url,
        "RUSTCHAIN_CHECKPOINT_SECONDS": "1",
    }
    relay = subprocess.Popen(
        [sys.executable, "-m", "rustchain", "events", "relay", "--store", "executor"],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def published_size() -> int:
        notes = asyncio.run(latest_published(nats_server.url, TENANT, ["executor"]))
        return int(notes[0].splitlines()[1]) if notes else 0

    try:
        wait_until_sync(lambda: published_size() == 1, 30, "the first checkpoint is published")
        store.append(_drafts()[2:6])
        wait_until_sync(lambda: published_size() == 3, 30, "a checkpoint after 1 s is published")
    finally:
        relay.terminate()
        relay.wait(timeout=30)
        store.close()

    assert relay.returncode == 0
