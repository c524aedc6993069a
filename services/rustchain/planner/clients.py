"""The planner's gRPC clients of the verifier and the executor."""

from __future__ import annotations

import json
from typing import Any

import grpc

from rustchain.domain.plans.plan import Plan
from rustchain.generated.rustchain.executor.v1 import executor_pb2, executor_pb2_grpc
from rustchain.generated.rustchain.verifier.v1 import verifier_pb2, verifier_pb2_grpc
from rustchain.planner.application import Problem, VerdictSummary
from rustchain.platform.grpc.client import call_error, tenant_metadata
from rustchain.platform.grpc.server import PASSED_THROUGH


class DownstreamError(Exception):
    """A service the planner called failed the call (not a refusal of the caller's request)."""

    def __init__(self, service: str, endpoint: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"the {service} at {endpoint} failed: {code.name.lower()}: {details}")
        self.code = code


def _failure(error: grpc.aio.AioRpcError, service: str, endpoint: str) -> Exception:
    """What a failed call raises: a refusal of the caller's request as it came (the servicer
    hands it back), ServiceUnavailableError, or DownstreamError."""
    if error.code() in PASSED_THROUGH:
        return error
    failure = call_error(error, service, endpoint)
    if failure is error:
        return DownstreamError(service, endpoint, error.code(), error.details() or "")
    return failure


def _problem(finding: verifier_pb2.Finding, undecided: bool) -> Problem:
    where = f"step '{finding.step_id}'" if finding.step_id else "the mission"
    subject = f"{where}: {finding.field}" if finding.field else where
    kind = "undecided: " if undecided else ""
    message = f"{kind}[{finding.rule}] {subject} {finding.explanation}"
    if finding.counterexample:
        shown = ", ".join(
            f"{name}={json.dumps(value, ensure_ascii=False)}"
            for name, value in sorted(finding.counterexample.items())
        )
        message += f" (counterexample: {shown})"
    return Problem(finding.file, finding.line, finding.column, "error", message, finding.rule)


class GrpcVerifier:
    """The verifier service, called over gRPC."""

    def __init__(self, channel: grpc.aio.Channel, endpoint: str) -> None:
        self._stub = verifier_pb2_grpc.VerifierServiceStub(channel)
        self._endpoint = endpoint

    async def verify(self, tenant: str, plan: Plan, mission_id: str) -> VerdictSummary:
        """The verdict on the plan, recorded by the verifier for the mission."""
        request = verifier_pb2.VerifyPlanRequest(plan_json=plan.to_json(), mission_id=mission_id)
        try:
            reply = await self._stub.VerifyPlan(request, metadata=tenant_metadata(tenant))
        except grpc.aio.AioRpcError as error:
            raise _failure(error, "verifier", self._endpoint) from None
        findings = [_problem(f, False) for f in reply.violations]
        findings += [_problem(f, True) for f in reply.undecided]
        return VerdictSummary(reply.status, reply.safe, findings, reply.verdict_token)


class GrpcExecutor:
    """The executor service, called over gRPC."""

    def __init__(self, channel: grpc.aio.Channel, endpoint: str) -> None:
        self._stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        self._endpoint = endpoint

    async def start(
        self,
        tenant: str,
        plan: Plan,
        variables: dict[str, Any],
        mission_id: str,
        workspace: str,
        verdict_token: str = "",
    ) -> str:
        """Start the plan with the verifier's grant; returns the mission id."""
        request = executor_pb2.StartMissionRequest(
            plan_json=plan.to_json(),
            variables_json=json.dumps(variables, sort_keys=True, ensure_ascii=False),
            mission_id=mission_id,
            workspace=workspace,
            verdict_token=verdict_token,
        )
        try:
            reply = await self._stub.StartMission(request, metadata=tenant_metadata(tenant))
        except grpc.aio.AioRpcError as error:
            # The id is this planner's fresh one and the grant is bound to it: a start that
            # exists already is this call's own first attempt, sent again by the channel's retry
            # to another replica after the first one went away before answering.
            if error.code() is grpc.StatusCode.ALREADY_EXISTS and mission_id:
                return mission_id
            raise _failure(error, "executor", self._endpoint) from None
        return reply.mission_id
