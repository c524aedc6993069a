"""A store's relay run from the command line: elected, checkpointing, until stopped or caught up.

`rustchain events relay` (cli/events.py) calls `relay_store`; the relay itself, its election and
the checkpoints are platform adapters, wired here from the settings of the process.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

import click

from rustchain.cli import exit_codes
from rustchain.cli.common import fail as _fail
from rustchain.domain.access.quotas import TenantQuotas, stream_hard_limit
from rustchain.domain.events.checkpoint import Checkpoint
from rustchain.platform.credentials.signing_keys import (
    CHECKPOINT_KEYS,
    SigningKeyError,
    load_private_key,
)
from rustchain.platform.nats.checkpoint_stream import CheckpointPublisher
from rustchain.platform.nats.jetstream import NatsUnavailableError, StreamSettings, stream_replicas
from rustchain.platform.nats.relay import JetStreamRelay, RelaySettings
from rustchain.platform.nats.relay_election import (
    ActiveLock,
    ElectionSettings,
    relay_lock,
    run_when_elected,
)
from rustchain.platform.storage.checkpoints import (
    Checkpointer,
    CheckpointSettings,
    checkpoint_periodically,
)
from rustchain.platform.storage.event_store import (
    EventStoreSettings,
    RecorderEventStore,
    open_event_store,
)
from rustchain.platform.storage.home import rustchain_home
from rustchain.platform.telemetry.relay_lag import RelayLag


def quotas() -> TenantQuotas:
    """The deployment's quotas, from its settings; a malformed one ends the command."""
    try:
        return TenantQuotas.from_settings(os.environ)
    except ValueError as error:
        _fail(str(error), exit_codes.USAGE)


def stream_settings() -> StreamSettings:
    """Each tenant's stream limits: its quota from the deployment's settings."""
    return StreamSettings(
        max_bytes=stream_hard_limit(quotas().max_stream_bytes), replicas=stream_replicas()
    )


def _checkpointer(store: RecorderEventStore, name: str) -> Checkpointer | None:
    """The store's checkpoint signer, or None when this process holds no checkpoint key."""
    try:
        key = load_private_key(rustchain_home(), CHECKPOINT_KEYS)
        settings = CheckpointSettings.from_environ()
    except (SigningKeyError, ValueError) as error:
        _fail(str(error), exit_codes.USAGE)
    return None if key is None else Checkpointer(store, name, key, settings)


async def _publish_once(url: str, checkpoints: list[Checkpoint]) -> None:
    publisher = CheckpointPublisher(url, stream_replicas())
    try:
        await publisher.publish(checkpoints)
    finally:
        await publisher.close()


def _report_for(name: str) -> Callable[[str], None]:
    def report(message: str) -> None:
        click.echo(f"relay {name}: {message}", err=True)

    return report


def _summary(settings: EventStoreSettings, relays: list[JetStreamRelay], signed: bool) -> str:
    published = sum(relay.stats.published for relay in relays)
    duplicates = sum(relay.stats.duplicates for relay in relays)
    skipped = sum(relay.stats.skipped for relay in relays)
    position = relays[-1].position if relays else 0
    unsigned = (
        ""
        if signed
        else f"; no checkpoint key ({CHECKPOINT_KEYS.private_variable}): tenant logs not"
        " checkpointed"
    )
    return (
        f"{settings.name}: relayed {published} event(s) ({duplicates} already"
        f" in JetStream, {skipped} skipped as held), position {position}{unsigned}"
    )


def _new_relay(store: RecorderEventStore, settings: EventStoreSettings, url: str) -> JetStreamRelay:
    relay_settings = RelaySettings(
        streams=stream_settings(), max_event_bytes=quotas().max_event_bytes
    )
    relay = JetStreamRelay(store, url, relay_settings)
    relay.lag = RelayLag(settings.name)
    return relay


async def _catch_up(
    store: RecorderEventStore,
    settings: EventStoreSettings,
    url: str,
    timeout: float,
    lock: ActiveLock,
) -> str:
    """Relay until caught up; when another relay is active, wait for it to catch up instead."""
    if not await lock.try_acquire():
        target = store.last_position()
        reader = RelaySettings().reader
        try:
            async with asyncio.timeout(timeout):
                while store.tracked_position(reader) < target:
                    await asyncio.sleep(RelaySettings().idle_poll)  # bounded poll of the store
        except TimeoutError:
            raise NatsUnavailableError(
                f"the active relay of {settings.name} has not caught up after {timeout:g} s"
            ) from None
        return f"{settings.name}: caught up by the active relay, position {target}"
    try:
        relay = _new_relay(store, settings, url)
        checkpointer = _checkpointer(store, settings.name)
        try:
            await relay.catch_up(timeout)
        except TimeoutError:
            paused = "".join(
                f"; tenant {tenant} paused: {reason}"
                for tenant, reason in relay.stats.paused().items()
            )
            raise NatsUnavailableError(
                f"relay to {url} not caught up after {timeout:g} s"
                f" ({relay.stats.outages} failed attempt(s) to reach JetStream){paused}"
            ) from None
        if checkpointer is not None:
            await _publish_once(url, checkpointer.advance())
        return _summary(settings, [relay], checkpointer is not None)
    finally:
        await lock.release()


async def _relay_until_stopped(
    store: RecorderEventStore, settings: EventStoreSettings, url: str, lock: ActiveLock
) -> str:
    """Relay (and checkpoint) while this process is the store's active relay, until a signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    checkpointer = _checkpointer(store, settings.name)
    relays: list[JetStreamRelay] = []

    async def relay_while_active(active: asyncio.Event) -> None:
        # A new relay on each election: it reads the positions the last active one tracked.
        relay = _new_relay(store, settings, url)
        relays.append(relay)
        publisher = CheckpointPublisher(url, stream_replicas())
        checkpoints = (
            asyncio.ensure_future(
                checkpoint_periodically(checkpointer, active, 1.0, publisher.publish)
            )
            if checkpointer is not None
            else None
        )
        try:
            await relay.run(active)
            if checkpoints is not None:
                await checkpoints
        finally:
            await publisher.close()

    election = ElectionSettings.from_environ()
    await run_when_elected(lock, relay_while_active, stop, election, _report_for(settings.name))
    return _summary(settings, relays, checkpointer is not None)


async def relay_store(
    settings: EventStoreSettings, url: str, until_caught_up: bool, timeout: float
) -> str:
    store = open_event_store(settings)
    try:
        lock = relay_lock(settings)
        if until_caught_up:
            return await _catch_up(store, settings, url, timeout, lock)
        return await _relay_until_stopped(store, settings, url, lock)
    finally:
        store.close()
