"""The trainer's durable JetStream consumer: one trajectory per finished mission, once.

It pulls `MissionFinished` events from every tenant's stream through a durable consumer, reads
that mission's executor events from the stream, folds them into a trajectory and saves it with
the stream sequence in one transaction, then acks. A crash between save and ack redelivers the
message, which the tracked position skips. Trainer replicas share the one durable consumer:
JetStream hands each message to one of them, and one that dies holding messages has them handed
to another after the ack wait.
"""

from __future__ import annotations

import json
import logging

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from rustchain.domain.errors import CorruptHistoryError
from rustchain.domain.events.envelope import decode_event
from rustchain.domain.events.names import SUBJECT_ROOT, stream_name, validate_tenant
from rustchain.domain.runs.trajectory import TrajectoryError, build_trajectory
from rustchain.platform.nats.jetstream import read_events
from rustchain.platform.telemetry.trace_context import consumer_span
from rustchain.trainer.trajectory_store import TrajectoryStore

DURABLE = "trainer"
"""The one durable consumer name: trainer replicas that share it share its messages."""
ACK_WAIT_SECONDS = 30.0
"""How long JetStream waits for an ack before handing a message to a consumer again (a replica
that died holding a batch); set when the durable consumer is created."""
_log = logging.getLogger(__name__)
EXECUTOR = "executor"


def finished_subject(tenant: str) -> str:
    """Every MissionFinished event of a tenant."""
    return f"{SUBJECT_ROOT}.{validate_tenant(tenant)}.*.{EXECUTOR}.MissionFinished"


class TrajectoryConsumer:
    """Turns finished missions into stored trajectories, idempotently."""

    def __init__(
        self, js: JetStreamContext, store: TrajectoryStore, ack_wait: float = ACK_WAIT_SECONDS
    ) -> None:
        self.js = js
        self.store = store
        self.ack_wait = ack_wait

    async def tenants(self) -> list[str]:
        """The tenants that have a stream (from each stream's subjects)."""
        found = []
        for info in await self.js.streams_info():
            for subject in info.config.subjects or []:
                parts = subject.split(".")
                if len(parts) == 3 and parts[0] == SUBJECT_ROOT and parts[2] == ">":
                    found.append(parts[1])
        return sorted(found)

    async def poll(self, tenant: str, batch: int = 100, wait: float = 1.0) -> int:
        """Process what is waiting for one tenant; returns the trajectories recorded."""
        stream = stream_name(tenant)
        config = ConsumerConfig(
            durable_name=DURABLE,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=finished_subject(tenant),
            ack_wait=self.ack_wait,
        )
        subscription = await self.js.pull_subscribe(
            finished_subject(tenant), durable=DURABLE, stream=stream, config=config
        )
        try:
            messages = await subscription.fetch(batch, timeout=wait)
        except TimeoutError:
            # Nothing waiting. nats-py raises its own TimeoutError, or asyncio's when the wait
            # ran out between its two pull requests (a busy machine): both are this.
            return 0
        finally:
            # Each poll subscribes an inbox of its own: released here, or the connection would
            # gather one per poll. Acks go to each message's reply subject and do not need it.
            await subscription.unsubscribe()
        recorded = 0
        for message in messages:
            sequence = message.metadata.sequence.stream
            # Part of the mission's trace: the relay put its context on the message.
            with consumer_span("process trajectory", message.headers, message.subject):
                if not self.store.processed(DURABLE, stream, sequence):
                    recorded += await self.record(tenant, stream, sequence, message.data)
            await message.ack()
        return recorded

    async def record(self, tenant: str, stream: str, sequence: int, data: bytes) -> int:
        """Record the trajectory of the MissionFinished event at `sequence`; 1 if recorded."""
        finished = decode_event(json.loads(data))
        events = [
            stored.event
            async for stored in read_events(self.js, tenant, finished.mission_id)
            if stored.event.service == EXECUTOR
        ]
        try:
            trajectory = build_trajectory(events)
        except TrajectoryError:
            self.store.skip(DURABLE, stream, sequence)
            return 0
        except CorruptHistoryError as error:
            # Not a trajectory this trainer can learn from; the auditors' tools name the event.
            _log.warning("mission %s/%s skipped: %s", tenant, finished.mission_id, error)
            self.store.skip(DURABLE, stream, sequence)
            return 0
        return int(self.store.save(trajectory, DURABLE, stream, sequence))
