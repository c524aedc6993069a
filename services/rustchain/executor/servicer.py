"""The executor's gRPC servicer: starts plans on the application and streams their facts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from rustchain.domain.bindings import VariableBindingError
from rustchain.domain.errors import CorruptHistoryError
from rustchain.domain.events import EventEnvelope
from rustchain.domain.mission_index import MissionEntry, page_of
from rustchain.domain.mission_run import MissionRun
from rustchain.domain.plan import Plan
from rustchain.domain.quotas import QuotaExceededError, check_stream_room
from rustchain.domain.run_events import RUN_EVENT_TYPES, RUN_FACTS, RunEvent
from rustchain.domain.verdict_grant import UnverifiedPlanError, check_grant
from rustchain.executor.application import (
    ExecutorApplication,
    MissionExistsError,
    WorkspaceRefusedError,
)
from rustchain.generated.rustchain.executor.v1 import executor_pb2, executor_pb2_grpc
from rustchain.platform.event_store import EventStoreError
from rustchain.platform.grpc_requests import (
    MAX_INT32,
    MAX_INT64,
    MAX_REASON_BYTES,
    BadRequestError,
    check_absolute_path,
    check_count,
    check_json_object,
    check_mission_id,
    check_present,
    check_text,
    request_tenant,
)
from rustchain.platform.grpc_server import ServiceBinding, StatusTable, abort_with
from rustchain.platform.jetstream import StreamUsage
from rustchain.platform.tokens import read_verdict

STATUS: StatusTable = {
    BadRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    VariableBindingError: grpc.StatusCode.INVALID_ARGUMENT,
    QuotaExceededError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    WorkspaceRefusedError: grpc.StatusCode.PERMISSION_DENIED,
    MissionExistsError: grpc.StatusCode.ALREADY_EXISTS,
    UnverifiedPlanError: grpc.StatusCode.PERMISSION_DENIED,
    CorruptHistoryError: grpc.StatusCode.DATA_LOSS,
    KeyError: grpc.StatusCode.NOT_FOUND,
    ValidationError: grpc.StatusCode.INVALID_ARGUMENT,
    ValueError: grpc.StatusCode.INVALID_ARGUMENT,
    EventStoreError: grpc.StatusCode.UNAVAILABLE,
}
WATCH_POLL_SECONDS = 1.0
"""How often a watch re-reads the store when no fact was recorded by this process."""
_log = logging.getLogger(__name__)


class Changes:
    """Wakes every waiting watch when this process records a fact."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def signal(self) -> asyncio.Event:
        """The event the next change will set."""
        return self._event

    def notify(self) -> None:
        """Something was recorded: wake the waiters, and arm a fresh event for the next change."""
        event, self._event = self._event, asyncio.Event()
        event.set()


def event_message(envelope: EventEnvelope, version: int) -> executor_pb2.MissionEvent:
    """The protobuf form of one recorded fact: its payload as stored, with its schema version,
    for the client to upcast (CorruptHistoryError when the fact cannot be read)."""
    fact = RUN_FACTS.read(envelope).fact
    return executor_pb2.MissionEvent(
        mission_id=envelope.mission_id,
        version=version,
        type=envelope.type,
        step_id=getattr(fact, "step_id", ""),
        payload_json=json.dumps(envelope.payload, sort_keys=True, ensure_ascii=False),
        occurred_at=envelope.occurred_at.isoformat(),
        schema_version=envelope.version,
    )


def _status(run: MissionRun) -> str:
    return run.outcome or "running"


def summary_message(mission_id: str, run: MissionRun, version: int) -> executor_pb2.MissionSummary:
    """The protobuf form of a run's state."""
    steps = [
        executor_pb2.StepSummary(
            id=step.id,
            name=step.name,
            step_type=step.step_type,
            status=run.steps[step.id].status.value,
            attempt=run.steps[step.id].attempt,
            error=run.steps[step.id].error or "",
            output_json=json.dumps(run.steps[step.id].output, default=str, ensure_ascii=False),
        )
        for step in run.plan.steps
    ]
    return executor_pb2.MissionSummary(
        mission_id=mission_id,
        mission_name=run.plan.mission_name,
        status=_status(run),
        plan_hash=run.plan_hash,
        workspace=run.workspace,
        steps=steps,
        outputs_json=json.dumps(run.outputs, default=str, ensure_ascii=False),
        version=version,
    )


def summary_of(entry: MissionEntry) -> executor_pb2.MissionSummary:
    """A listing's line for a mission."""
    return executor_pb2.MissionSummary(
        mission_id=entry.mission_id,
        mission_name=entry.mission_name,
        status=entry.status,
        plan_hash=entry.plan_hash,
        workspace=entry.workspace,
    )


class ExecutorServicer(executor_pb2_grpc.ExecutorServiceServicer):
    """Drives each started mission in a background task of the server's event loop."""

    def __init__(
        self,
        application: ExecutorApplication,
        stream_usage: Callable[[str], Awaitable[StreamUsage | None]] | None = None,
        verdict_key: Ed25519PublicKey | None = None,
    ) -> None:
        self.app = application
        # With the verifier's public key, a mission starts only with the verifier's signed SAFE
        # verdict; the executor holds no key that could sign one.
        self.verdict_key = verdict_key
        # Where the tenant's event stream stands against its size quota, when JetStream is known.
        self.stream_usage = stream_usage
        self.changes = Changes()
        self._driving: dict[tuple[str, str], asyncio.Task[MissionRun]] = {}
        earlier = application.listener

        def listener(run: MissionRun, facts: list[RunEvent]) -> None:
            if earlier is not None:
                earlier(run, facts)
            self.changes.notify()

        application.listener = listener

    def resume_unfinished(self) -> list[tuple[str, str]]:
        """Drive every mission the store holds unfinished (after a restart); returns them."""
        missions = self.app.unfinished()
        for tenant, mission_id in missions:
            self._drive(tenant, mission_id)
        return missions

    def _drive(self, tenant: str, mission_id: str) -> None:
        key = (tenant, mission_id)
        if key in self._driving:
            return
        task = asyncio.ensure_future(self.app.drive(tenant, mission_id))
        self._driving[key] = task

        def finished(done: asyncio.Task[MissionRun]) -> None:
            if self._driving.get(key) is done:
                del self._driving[key]
            if not done.cancelled() and done.exception() is not None:
                _log.error("mission %s of %s stopped: %r", mission_id, tenant, done.exception())
            self.changes.notify()

        task.add_done_callback(finished)

    async def stop(self) -> None:
        """Cancel the drives in flight; the store lets a later start resume them."""
        tasks = list(self._driving.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def StartMission(
        self,
        request: executor_pb2.StartMissionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> executor_pb2.StartMissionResponse:
        """Record the start of a run and drive it in the background."""
        try:
            tenant = request_tenant(context.invocation_metadata())
            # plan_json and variables_json are bounded by the message limit only: the planner
            # makes them from a mission and variables it has bounded.
            plan = Plan.model_validate_json(check_present("plan_json", request.plan_json))
            variables = check_json_object("variables_json", request.variables_json)
            workspace = check_absolute_path("workspace", request.workspace)
            mission_id = check_mission_id("mission_id", request.mission_id, required=False)
            if self.verdict_key is not None:
                grant = read_verdict(self.verdict_key, request.verdict_token)
                check_grant(grant, tenant, mission_id, plan.content_hash)
            if self.stream_usage is not None:
                usage = await self.stream_usage(tenant)
                if usage is not None:
                    quota = self.app.quotas.max_stream_bytes
                    check_stream_room(tenant, usage.held_bytes, quota)
            mission_id = self.app.start(
                tenant,
                plan,
                variables,
                mission_id or None,
                Path(workspace) if workspace else None,
            )
        except Exception as error:
            await abort_with(context, error, STATUS)
        self._drive(tenant, mission_id)
        self.changes.notify()
        return executor_pb2.StartMissionResponse(mission_id=mission_id)

    async def WatchMission(
        self,
        request: executor_pb2.WatchMissionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[executor_pb2.MissionEvent]:
        """Every fact after `after_version`, then each new one, until MissionFinished."""
        try:
            tenant = request_tenant(context.invocation_metadata())
            mission_id = check_mission_id("mission_id", request.mission_id)
            sent = check_count("after_version", request.after_version, 0, MAX_INT64)
        except Exception as error:
            await abort_with(context, error, STATUS)
        while True:
            changed = self.changes.signal()
            try:
                envelopes = self.app.store.mission_events(tenant, mission_id)
                if not envelopes:
                    raise KeyError(f"no mission '{mission_id}' for tenant '{tenant}'")
                if sent > len(envelopes):
                    # Versions only grow: no stream ever sent this one, and waiting for it
                    # would hold the call open for nothing.
                    raise BadRequestError(
                        f"after_version {sent:,} is beyond the mission's last version"
                        f" {len(envelopes):,}"
                    )
            except Exception as error:
                await abort_with(context, error, STATUS)
            if any(envelope.type == "MissionFinished" for envelope in envelopes[:sent]):
                return  # the caller has seen the end already
            for version, envelope in enumerate(envelopes[sent:], start=sent + 1):
                if envelope.type in RUN_EVENT_TYPES:
                    try:
                        message = event_message(envelope, version)
                    except Exception as error:
                        await abort_with(context, error, STATUS)
                    yield message
                if envelope.type == "MissionFinished":
                    return
            sent = len(envelopes)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), WATCH_POLL_SECONDS)

    async def GetMission(
        self,
        request: executor_pb2.GetMissionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> executor_pb2.MissionSummary:
        """A run's state, folded from its facts."""
        try:
            tenant = request_tenant(context.invocation_metadata())
            mission_id = check_mission_id("mission_id", request.mission_id)
            run = self.app.load(tenant, mission_id)
            version = len(self.app.store.mission_events(tenant, mission_id))
        except Exception as error:
            await abort_with(context, error, STATUS)
        return summary_message(mission_id, run, version)

    async def ListMissions(
        self,
        request: executor_pb2.ListMissionsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> executor_pb2.ListMissionsResponse:
        """A page of the tenant's missions, oldest first."""
        try:
            tenant = request_tenant(context.invocation_metadata())
            size = check_count("page_size", request.page_size, 0, MAX_INT32)
            page = page_of(self.app.index().of_tenant(tenant), size, request.page_token)
        except Exception as error:
            await abort_with(context, error, STATUS)
        missions = [summary_of(entry) for entry in page.entries]
        return executor_pb2.ListMissionsResponse(missions=missions, next_page_token=page.next_token)

    async def CancelMission(
        self,
        request: executor_pb2.CancelMissionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> executor_pb2.CancelMissionResponse:
        """Ask a run to stop: nothing new starts; False when it had already ended."""
        try:
            tenant = request_tenant(context.invocation_metadata())
            cancelled = self.app.cancel(
                tenant,
                check_mission_id("mission_id", request.mission_id),
                check_text("reason", request.reason, MAX_REASON_BYTES) or "cancelled on request",
            )
        except Exception as error:
            await abort_with(context, error, STATUS)
        self.changes.notify()
        return executor_pb2.CancelMissionResponse(cancelled=cancelled)


def binding(servicer: ExecutorServicer) -> ServiceBinding:
    """The servicer as the gRPC server helper takes it."""
    return ServiceBinding(
        servicer,
        executor_pb2_grpc.add_ExecutorServiceServicer_to_server,
        executor_pb2.DESCRIPTOR.services_by_name["ExecutorService"].full_name,
    )
