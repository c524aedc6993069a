"""The planner's gRPC servicer: converts requests to the planner's use cases and back."""

from __future__ import annotations

from typing import Any

import grpc

from rustchain.generated.rustchain.planner.v1 import planner_pb2, planner_pb2_grpc
from rustchain.planner.application import PlannerApplication, Problem, validate
from rustchain.platform.grpc_auth import CALL_TOKEN, bearer
from rustchain.platform.grpc_client import ServiceUnavailableError, tenant_of
from rustchain.platform.grpc_server import ServiceBinding, StatusTable, abort_with

STATUS: StatusTable = {
    ServiceUnavailableError: grpc.StatusCode.UNAVAILABLE,
    grpc.aio.AioRpcError: grpc.StatusCode.INTERNAL,
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
        tenant = tenant_of(context.invocation_metadata())
        # The verifier and the executor are called with the caller's own credential.
        CALL_TOKEN.set(bearer(context.invocation_metadata()))
        try:
            submission = await self.app.submit(
                tenant,
                request.yaml.encode("utf-8"),
                request.file_name or DEFAULT_FILE_NAME,
                dict(request.variables),
                request.workspace,
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
        checked = validate(
            request.yaml.encode("utf-8"),
            request.file_name or DEFAULT_FILE_NAME,
            dict(request.variables),
            self.app.registry,
        )
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
