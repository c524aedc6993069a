"""The planner's gRPC servicer: converts requests to the planner's use cases and back."""

from __future__ import annotations

from typing import Any

import grpc

from rustchain.generated.rustchain.planner.v1 import planner_pb2, planner_pb2_grpc
from rustchain.planner.application import PlannerApplication, Problem, validate
from rustchain.planner.clients import DownstreamError
from rustchain.platform.grpc.auth import CALL_TOKEN, bearer
from rustchain.platform.grpc.client import ServiceUnavailableError
from rustchain.platform.grpc.request_checks import (
    MAX_DOCUMENT_BYTES,
    BadRequestError,
    check_absolute_path,
    check_name,
    check_text,
    check_variables,
    request_tenant,
)
from rustchain.platform.grpc.server import ServiceBinding, StatusTable, abort_with

STATUS: StatusTable = {
    BadRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    ServiceUnavailableError: grpc.StatusCode.UNAVAILABLE,
    DownstreamError: grpc.StatusCode.INTERNAL,
}
DEFAULT_FILE_NAME = "mission.yaml"


def _diagnostic(problem: Problem) -> planner_pb2.Diagnostic:
    return planner_pb2.Diagnostic(
        file=problem.file,
        line=problem.line,
        column=problem.column,
        severity=problem.severity,
        message=problem.message,
        rule=problem.rule,
    )


def _mission(
    request: planner_pb2.SubmitMissionRequest | planner_pb2.ValidateMissionRequest,
) -> tuple[bytes, str, dict[str, str]]:
    """The mission's text, file name and variables, each bounded."""
    return (
        check_text("yaml", request.yaml, MAX_DOCUMENT_BYTES).encode("utf-8"),
        check_name("file_name", request.file_name, required=False) or DEFAULT_FILE_NAME,
        check_variables("variables", request.variables),
    )


class PlannerServicer(planner_pb2_grpc.PlannerServiceServicer):
    """SubmitMission and ValidateMission over the planner application."""

    def __init__(self, application: PlannerApplication) -> None:
        self.app = application

    async def SubmitMission(
        self,
        request: planner_pb2.SubmitMissionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> planner_pb2.SubmitMissionResponse:
        """Start the mission, or return every problem with its position."""
        # The verifier and the executor are called with the caller's own credential.
        CALL_TOKEN.set(bearer(context.invocation_metadata()))
        try:
            tenant = request_tenant(context.invocation_metadata())
            text, file_name, variables = _mission(request)
            submission = await self.app.submit(
                tenant,
                text,
                file_name,
                variables,
                # Checked here: the executor's refusal would reach the caller as INTERNAL.
                check_absolute_path("workspace", request.workspace),
            )
        except Exception as error:
            await abort_with(context, error, STATUS)
        plan = submission.plan
        return planner_pb2.SubmitMissionResponse(
            accepted=submission.accepted,
            mission_id=submission.mission_id,
            mission_name=plan.mission_name if plan else "",
            plan_hash=plan.content_hash if plan else "",
            diagnostics=[_diagnostic(p) for p in submission.problems],
            verdict_status=submission.verdict_status,
        )

    async def ValidateMission(
        self,
        request: planner_pb2.ValidateMissionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> planner_pb2.ValidateMissionResponse:
        """Compile and bind only; the plan comes back when valid."""
        try:
            request_tenant(context.invocation_metadata())  # read nowhere, refused as everywhere
            checked = validate(*_mission(request), self.app.registry)
        except Exception as error:
            await abort_with(context, error, STATUS)
        plan = checked.compilation.plan
        return planner_pb2.ValidateMissionResponse(
            valid=checked.valid,
            diagnostics=[_diagnostic(p) for p in checked.problems],
            plan_json=plan.to_json() if plan and checked.valid else "",
            plan_hash=plan.content_hash if plan and checked.valid else "",
        )


def binding(servicer: PlannerServicer) -> ServiceBinding:
    """The servicer as the gRPC server helper takes it."""
    return ServiceBinding(
        servicer,
        planner_pb2_grpc.add_PlannerServiceServicer_to_server,
        planner_pb2.DESCRIPTOR.services_by_name["PlannerService"].full_name,
    )
