"""The executor's gRPC servicer: starts plans on the application and streams their facts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from pydantic import ValidationError

from rustchain.domain.events import EventEnvelope
from rustchain.domain.mission_run import MissionRun
from rustchain.domain.plan import Plan
from rustchain.domain.quotas import QuotaExceededError
from rustchain.domain.run_events import RUN_EVENT_TYPES, RunEvent
from rustchain.executor.application import ExecutorApplication
from rustchain.generated.rustchain.executor.v1 import executor_pb2, executor_pb2_grpc
from rustchain.platform.event_store import EventStore, EventStoreError, stored_events
from rustchain.platform.grpc_client import tenant_of
from rustchain.platform.grpc_server import ServiceBinding, StatusTable, abort_with

STATUS: StatusTable = {
    QuotaExceededError: grpc.StatusCode.RESOURCE_EXHAUSTED,
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


def _step_id(envelope: EventEnvelope) -> str:
    value = envelope.payload.get("step_id")
    return value if isinstance(value, str) else ""


def event_message(envelope: EventEnvelope, version: int) -> executor_pb2.MissionEvent:
    """The protobuf form of one recorded fact."""
    return executor_pb2.MissionEvent(
        mission_id=envelope.mission_id,
        version=version,
        type=envelope.type,
        step_id=_step_id(envelope),
        payload_json=json.dumps(envelope.payload, sort_keys=True, ensure_ascii=False),
        occurred_at=envelope.occurred_at.isoformat(),
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


def tenant_missions(store: EventStore, tenant: str) -> list[executor_pb2.MissionSummary]:
    """Every mission of a tenant in start order, with its outcome, from the notification log."""
    found: dict[str, executor_pb2.MissionSummary] = {}
    for event in stored_events(store):
        if event.tenant != tenant:
            continue
        if event.type == "MissionStarted":
            plan = event.payload.get("plan", {})
            found[event.mission_id] = executor_pb2.MissionSummary(
                mission_id=event.mission_id,
                mission_name=str(plan.get("mission_name", "")),
                status="running",
                plan_hash=str(event.payload.get("plan_hash", "")),
                workspace=str(event.payload.get("workspace", "")),
            )
        elif event.type == "MissionFinished" and event.mission_id in found:
            found[event.mission_id].status = str(event.payload.get("outcome", ""))
    return list(found.values())


class ExecutorServicer(executor_pb2_grpc.ExecutorServiceServicer):
    """Drives each started mission in a background task of the server's event loop."""

    def __init__(self, application: ExecutorApplication) -> None:
        self.app = application
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
        tenant = tenant_of(context.invocation_metadata())
        try:
            plan = Plan.model_validate_json(request.plan_json)
            variables = json.loads(request.variables_json or "{}")
            if not isinstance(variables, dict):
                raise ValueError("variables_json must be a JSON object")
            workspace = Path(request.workspace) if request.workspace else None
            if workspace is not None and not workspace.is_absolute():
                raise ValueError(f"workspace must be an absolute path, not {request.workspace!r}")
            mission_id = self.app.start(
                tenant, plan, variables, request.mission_id or None, workspace
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
        tenant = tenant_of(context.invocation_metadata())
        sent = max(request.after_version, 0)
        while True:
            changed = self.changes.signal()
            try:
                envelopes = self.app.store.mission_events(tenant, request.mission_id)
                if not envelopes:
                    raise KeyError(f"no mission '{request.mission_id}' for tenant '{tenant}'")
            except Exception as error:
                await abort_with(context, error, STATUS)
            for version, envelope in enumerate(envelopes[sent:], start=sent + 1):
                if envelope.type in RUN_EVENT_TYPES:
                    yield event_message(envelope, version)
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
        tenant = tenant_of(context.invocation_metadata())
        try:
            run = self.app.load(tenant, request.mission_id)
            version = len(self.app.store.mission_events(tenant, request.mission_id))
        except Exception as error:
            await abort_with(context, error, STATUS)
        return summary_message(request.mission_id, run, version)

    async def ListMissions(
        self,
        request: executor_pb2.ListMissionsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> executor_pb2.ListMissionsResponse:
        """The tenant's missions, oldest first."""
        tenant = tenant_of(context.invocation_metadata())
        try:
            missions = tenant_missions(self.app.store, tenant)
        except Exception as error:
            await abort_with(context, error, STATUS)
        return executor_pb2.ListMissionsResponse(missions=missions)

    async def CancelMission(
        self,
        request: executor_pb2.CancelMissionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> executor_pb2.CancelMissionResponse:
        """Ask a run to stop: nothing new starts; False when it had already ended."""
        tenant = tenant_of(context.invocation_metadata())
        try:
            cancelled = self.app.cancel(
                tenant, request.mission_id, request.reason or "cancelled on request"
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
