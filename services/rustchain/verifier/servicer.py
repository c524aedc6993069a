"""The verifier's gRPC servicer: translates VerifyPlan to the verifier application and back."""

from __future__ import annotations

from typing import Any

import grpc
from pydantic import ValidationError

from rustchain.domain.errors import CorruptHistoryError
from rustchain.domain.plans.plan import Plan
from rustchain.domain.plans.verdict import Finding, Verdict
from rustchain.generated.rustchain.verifier.v1 import verifier_pb2, verifier_pb2_grpc
from rustchain.platform.grpc.request_checks import (
    BadRequestError,
    check_mission_id,
    check_present,
    request_tenant,
)
from rustchain.platform.grpc.server import ServiceBinding, StatusTable, abort_with
from rustchain.platform.storage.event_store import EventStoreError
from rustchain.platform.telemetry.verdicts import observe_verdict
from rustchain.verifier.application import InconsistentPlanError, VerifierApplication
from rustchain.verifier.policy_files import PolicyFileError

STATUS: StatusTable = {
    BadRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    InconsistentPlanError: grpc.StatusCode.INVALID_ARGUMENT,
    # The tenant's policy file is broken: the deployment must fix it, the caller cannot.
    PolicyFileError: grpc.StatusCode.FAILED_PRECONDITION,
    CorruptHistoryError: grpc.StatusCode.DATA_LOSS,
    EventStoreError: grpc.StatusCode.UNAVAILABLE,
}


def _plan(text: str) -> Plan:
    try:
        return Plan.model_validate_json(text)
    except ValidationError as error:
        raise BadRequestError(f"plan_json is not a plan: {error}") from None


def _finding(finding: Finding, undecided: bool) -> verifier_pb2.Finding:
    return verifier_pb2.Finding(
        rule=finding.rule,
        step_id=finding.step_id or "",
        file=finding.file,
        line=finding.line,
        column=finding.column,
        field=finding.field or "",
        explanation=finding.explanation,
        counterexample=finding.counterexample,
        rendered=finding.render(undecided=undecided),
    )


def verdict_message(verdict: Verdict) -> verifier_pb2.VerifyPlanResponse:
    """The protobuf form of a verdict."""
    return verifier_pb2.VerifyPlanResponse(
        status=verdict.status.value,
        safe=verdict.safe,
        plan_hash=verdict.plan_hash,
        policy_name=verdict.policy_name,
        policy_hash=verdict.policy_hash,
        violations=[_finding(f, undecided=False) for f in verdict.violations],
        undecided=[_finding(f, undecided=True) for f in verdict.undecided],
        verdict_json=verdict.to_json(),
    )


class VerifierServicer(verifier_pb2_grpc.VerifierServiceServicer):
    """VerifyPlan over the verifier application: requests in, verdicts out."""

    def __init__(self, application: VerifierApplication) -> None:
        self.app = application

    async def VerifyPlan(
        self,
        request: verifier_pb2.VerifyPlanRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> verifier_pb2.VerifyPlanResponse:
        """Prove the plan safe or say how it is not; record the verdict for its mission."""
        try:
            tenant = request_tenant(context.invocation_metadata())
            # Bounded by the message limit only: the planner makes it from a bounded mission.
            plan = _plan(check_present("plan_json", request.plan_json))
            mission_id = check_mission_id("mission_id", request.mission_id, required=False)
            verification = await self.app.verify(tenant, plan, mission_id)
        except Exception as error:
            await abort_with(context, error, STATUS)
        observe_verdict(verification.verdict, tenant)
        reply = verdict_message(verification.verdict)
        reply.verdict_token = verification.grant_token
        return reply


def binding(servicer: VerifierServicer) -> ServiceBinding:
    """The servicer as the gRPC server helper takes it."""
    return ServiceBinding(
        servicer,
        verifier_pb2_grpc.add_VerifierServiceServicer_to_server,
        verifier_pb2.DESCRIPTOR.services_by_name["VerifierService"].full_name,
    )
