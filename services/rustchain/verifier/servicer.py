"""The verifier's gRPC servicer: a plan in, a verdict out, kept as a PlanVerified event."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from rustchain.domain.plan import Plan
from rustchain.domain.policy import Policy
from rustchain.domain.verdict import Finding, Verdict
from rustchain.domain.verdict_grant import VerdictGrant
from rustchain.generated.rustchain.verifier.v1 import verifier_pb2, verifier_pb2_grpc
from rustchain.platform.event_store import EventStore, EventStoreError
from rustchain.platform.grpc_requests import (
    BadRequestError,
    check_mission_id,
    check_present,
    request_tenant,
)
from rustchain.platform.grpc_server import ServiceBinding, StatusTable, abort_with
from rustchain.platform.tokens import issue_verdict
from rustchain.steps import constraint_generators
from rustchain.verifier.engine import VerifierSettings, verify_plan
from rustchain.verifier.recording import record_verdict

STATUS: StatusTable = {
    BadRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    ValidationError: grpc.StatusCode.INVALID_ARGUMENT,
    ValueError: grpc.StatusCode.INVALID_ARGUMENT,
    EventStoreError: grpc.StatusCode.UNAVAILABLE,
}


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
    """Verifies plans against each tenant's policy."""

    def __init__(
        self,
        store: EventStore,
        policy_for: Callable[[str], Policy],
        settings: VerifierSettings | None = None,
        signing_key: Ed25519PrivateKey | None = None,
    ) -> None:
        self.store = store
        self.policy_for = policy_for
        self.settings = settings or VerifierSettings()
        # With the verifier's own key, a SAFE verdict for a mission comes with a signed grant that
        # the executor requires before it starts anything.
        self.signing_key = signing_key

    async def VerifyPlan(
        self,
        request: verifier_pb2.VerifyPlanRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> verifier_pb2.VerifyPlanResponse:
        """Prove the plan safe or say how it is not; record the verdict for its mission."""
        try:
            tenant = request_tenant(context.invocation_metadata())
            # Bounded by the message limit only: the planner makes it from a bounded mission.
            plan = Plan.model_validate_json(check_present("plan_json", request.plan_json))
            mission_id = check_mission_id("mission_id", request.mission_id, required=False)
            verdict = await asyncio.to_thread(
                verify_plan, plan, self.policy_for(tenant), constraint_generators(), self.settings
            )
            if mission_id:
                record_verdict(
                    self.store,
                    verdict,
                    tenant,
                    mission_id,
                    lambda: str(uuid.uuid4()),
                    lambda: datetime.now(UTC),
                )
        except Exception as error:
            await abort_with(context, error, STATUS)
        reply = verdict_message(verdict)
        if verdict.safe and mission_id and self.signing_key is not None:
            grant = VerdictGrant(
                tenant=tenant,
                mission_id=mission_id,
                plan_hash=verdict.plan_hash,
                policy_hash=verdict.policy_hash,
            )
            reply.verdict_token = issue_verdict(self.signing_key, grant)
        return reply


def binding(servicer: VerifierServicer) -> ServiceBinding:
    """The servicer as the gRPC server helper takes it."""
    return ServiceBinding(
        servicer,
        verifier_pb2_grpc.add_VerifierServiceServicer_to_server,
        verifier_pb2.DESCRIPTOR.services_by_name["VerifierService"].full_name,
    )
