"""The executor's gRPC servicer: starts plans on the application and streams their facts."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from pydantic import ValidationError

from rustchain.domain.access.quotas import QuotaExceededError
from rustchain.domain.errors import CorruptHistoryError
from rustchain.domain.events.envelope import EventEnvelope
from rustchain.domain.plans.bindings import VariableBindingError
from rustchain.domain.plans.plan import Plan
from rustchain.domain.plans.verdict_grant import UnverifiedPlanError
from rustchain.domain.runs.mission_index import MissionEntry, PageTokenError, page_of
from rustchain.domain.runs.mission_run import MissionRun, RunTransitionError
from rustchain.domain.runs.run_events import RUN_EVENT_TYPES, RUN_FACTS, MissionFinished
from rustchain.executor.admission import StartMission
from rustchain.executor.application import (
    MissionExistsError,
    MissionNotFoundError,
    WorkspaceRefusedError,
)
from rustchain.executor.driver import ELSEWHERE_POLL_SECONDS, MissionDriver
from rustchain.executor.lease_owner import owner_message
from rustchain.generated.rustchain.executor.v1 import executor_pb2, executor_pb2_grpc
from rustchain.platform.grpc.request_checks import (
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
from rustchain.platform.grpc.server import ServiceBinding, StatusTable, abort_with
from rustchain.platform.storage.event_store import EventStoreError

FINISHED = MissionFinished.model_fields["type"].default
"""The type of a mission's last fact: a watch ends with it."""
STATUS: StatusTable = {
    BadRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    PageTokenError: grpc.StatusCode.INVALID_ARGUMENT,
    VariableBindingError: grpc.StatusCode.INVALID_ARGUMENT,
    QuotaExceededError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    WorkspaceRefusedError: grpc.StatusCode.PERMISSION_DENIED,
    MissionExistsError: grpc.StatusCode.ALREADY_EXISTS,
    UnverifiedPlanError: grpc.StatusCode.PERMISSION_DENIED,
    MissionNotFoundError: grpc.StatusCode.NOT_FOUND,
    # A stored history that no longer reads: the caller's request was fine, the record is not.
    CorruptHistoryError: grpc.StatusCode.DATA_LOSS,
    RunTransitionError: grpc.StatusCode.DATA_LOSS,
    EventStoreError: grpc.StatusCode.UNAVAILABLE,
}
WATCH_POLL_SECONDS = 1.0
"""How often a watch re-reads the store when no fact was recorded by this process."""


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
    """Translates the executor's calls to its driver and application, and their answers back."""

    def __init__(self, driver: MissionDriver) -> None:
        self.driver = driver
        self.app = driver.application

    async def StartMission(
        self,
        request: executor_pb2.StartMissionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> executor_pb2.StartMissionResponse:
        """Record the start of a run and drive it in the background."""
        try:
            command = _start_command(request, request_tenant(context.invocation_metadata()))
            mission_id = await self.driver.start(command)
        except Exception as error:
            await abort_with(context, error, STATUS)
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
            changed = self.driver.changes.signal()
            try:
                envelopes = self.app.history(tenant, mission_id)
                if sent > len(envelopes):
                    # Versions only grow: no stream ever sent this one, and waiting for it
                    # would hold the call open for nothing.
                    raise BadRequestError(
                        f"after_version {sent:,} is beyond the mission's last version"
                        f" {len(envelopes):,}"
                    )
            except Exception as error:
                await abort_with(context, error, STATUS)
            if any(envelope.type == FINISHED for envelope in envelopes[:sent]):
                return  # the caller has seen the end already
            for version, envelope in enumerate(envelopes[sent:], start=sent + 1):
                if envelope.type in RUN_EVENT_TYPES:
                    try:
                        message = event_message(envelope, version)
                    except Exception as error:
                        await abort_with(context, error, STATUS)
                    yield message
                if envelope.type == FINISHED:
                    return
            sent = len(envelopes)
            elsewhere = self.driver.leases.shared and not self.driver.owns(tenant, mission_id)
            # A mission another replica drives: its facts reach this process only through the store.
            poll = ELSEWHERE_POLL_SECONDS if elsewhere else WATCH_POLL_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), poll)

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
            version = len(self.app.history(tenant, mission_id))
            owner = owner_message(self.app.leases, tenant, mission_id)
        except Exception as error:
            await abort_with(context, error, STATUS)
        summary = summary_message(mission_id, run, version)
        summary.owner.CopyFrom(owner)
        return summary

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
            cancelled = self.driver.cancel(
                tenant,
                check_mission_id("mission_id", request.mission_id),
                check_text("reason", request.reason, MAX_REASON_BYTES) or "cancelled on request",
            )
        except Exception as error:
            await abort_with(context, error, STATUS)
        return executor_pb2.CancelMissionResponse(cancelled=cancelled)


def _start_command(request: executor_pb2.StartMissionRequest, tenant: str) -> StartMission:
    """The request as the application takes it, or BadRequestError naming the field at fault."""
    # plan_json and variables_json are bounded by the message limit only: the planner makes them
    # from a mission and variables it has bounded.
    try:
        plan = Plan.model_validate_json(check_present("plan_json", request.plan_json))
    except ValidationError as error:
        raise BadRequestError(f"plan_json is not a plan: {error}") from None
    workspace = check_absolute_path("workspace", request.workspace)
    return StartMission(
        tenant,
        plan,
        check_json_object("variables_json", request.variables_json),
        check_mission_id("mission_id", request.mission_id, required=False) or None,
        Path(workspace) if workspace else None,
        request.verdict_token,
    )


def binding(servicer: ExecutorServicer) -> ServiceBinding:
    """The servicer as the gRPC server helper takes it."""
    return ServiceBinding(
        servicer,
        executor_pb2_grpc.add_ExecutorServiceServicer_to_server,
        executor_pb2.DESCRIPTOR.services_by_name["ExecutorService"].full_name,
    )
