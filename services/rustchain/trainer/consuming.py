"""The trainer's consumer loop: poll every tenant's stream until stopped, through NATS outages."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from rustchain.platform.nats.jetstream import connect
from rustchain.trainer.consumer import ACK_WAIT_SECONDS, TrajectoryConsumer
from rustchain.trainer.trajectory_store import TrajectoryStore

IDLE_SECONDS = 1.0
"""How long the loop waits before looking again when no tenant had anything new."""
RETRY_SECONDS = 2.0
FETCH_WAIT_SECONDS = 0.2
_log = logging.getLogger(__name__)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def consume_until(
    url: str, store: TrajectoryStore, stop: asyncio.Event, ack_wait: float = ACK_WAIT_SECONDS
) -> None:
    """Record a trajectory for each finished mission of every tenant until `stop` is set."""
    while not stop.is_set():
        try:
            client = await connect(url)
        except Exception as error:
            _log.error("trainer: NATS at %s unreachable (%s); retrying", url, error)
            await _wait(stop, RETRY_SECONDS)
            continue
        try:
            consumer = TrajectoryConsumer(client.jetstream(), store, ack_wait)
            while not stop.is_set() and client.is_connected:
                recorded = 0
                for tenant in await consumer.tenants():
                    recorded += await consumer.poll(tenant, wait=FETCH_WAIT_SECONDS)
                if recorded == 0:
                    await _wait(stop, IDLE_SECONDS)
        except Exception as error:
            # Named by its type too: a timeout's message is empty.
            _log.error(
                "trainer: consuming from %s failed (%s: %s); reconnecting",
                url,
                type(error).__name__,
                error,
            )
            await _wait(stop, RETRY_SECONDS)
        finally:
            with contextlib.suppress(Exception):
                await client.close()
