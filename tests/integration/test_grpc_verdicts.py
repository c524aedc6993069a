"""With the deployment's key, the executor starts only what the verifier proved SAFE for that
tenant, mission and plan: a caller going around the planner is refused."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest

from rustchain.domain.access.credentials import Claims, Role
from rustchain.generated.rustchain.executor.v1 import executor_pb2, executor_pb2_grpc
from rustchain.generated.rustchain.verifier.v1 import verifier_pb2, verifier_pb2_grpc
from rustchain.platform.credentials.tokens import issue
from tests.integration.grpc_helpers import running_services
from tests.keys import home_keys
from tests.unit.compile_helpers import plan_of

MISSION = 'version: "1.0"\nname: one\nsteps:\n  - {id: a, step_type: noop}\n'
OTHER = MISSION.replace("name: one", "name: other")


def test_the_executor_starts_only_what_the_verifier_granted(tmp_path: Path) -> None:
    key = home_keys(tmp_path)
    acme = issue(key, Claims(sub="acme-ci", role=Role.TENANT, tenant="acme"))
    metadata = (("x-rustchain-tenant", "acme"), ("authorization", f"Bearer {acme}"))
    plan, other = plan_of(MISSION), plan_of(OTHER)

    async def scenario() -> dict[str, tuple[grpc.StatusCode, str]]:
        outcomes: dict[str, tuple[grpc.StatusCode, str]] = {}
        async with running_services(tmp_path, ("verifier", "executor")) as services:
            verifier = verifier_pb2_grpc.VerifierServiceStub(services.channel("verifier"))
            executor = executor_pb2_grpc.ExecutorServiceStub(services.channel("executor"))
            verdict = await verifier.VerifyPlan(
                verifier_pb2.VerifyPlanRequest(plan_json=plan.to_json(), mission_id="m1"),
                metadata=metadata,
            )
            assert verdict.safe and verdict.verdict_token

            async def start(name: str, plan_json: str, mission_id: str, token: str) -> None:
                request = executor_pb2.StartMissionRequest(
                    plan_json=plan_json, mission_id=mission_id, verdict_token=token
                )
                try:
                    await executor.StartMission(request, metadata=metadata)
                except grpc.aio.AioRpcError as refused:
                    outcomes[name] = (refused.code(), refused.details() or "")
                else:
                    outcomes[name] = (grpc.StatusCode.OK, "")

            await start("no token", plan.to_json(), "m1", "")
            await start("another plan", other.to_json(), "m1", verdict.verdict_token)
            await start("another mission", plan.to_json(), "m2", verdict.verdict_token)
            await start("granted", plan.to_json(), "m1", verdict.verdict_token)
        return outcomes

    outcomes = asyncio.run(scenario())
    assert outcomes["granted"] == (grpc.StatusCode.OK, "")
    for name, needle in (
        ("no token", "carries no verdict token"),
        ("another plan", "the plan changed after verification"),
        ("another mission", "another mission"),
    ):
        code, details = outcomes[name]
        assert code is grpc.StatusCode.PERMISSION_DENIED, name
        assert needle in details, name


CHOOSING = """version: "1.0"
name: choosing
variables:
  colour: {type: string, enum: [red, green]}
  code: {type: string, pattern: "[a-z]{3}", default: abc}
  count: {type: integer, default: 1}
steps:
  - {id: a, step_type: noop}
"""


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"colour": "blue"}, "variable 'colour' must be one of"),
        ({"colour": "red", "code": "abcd; rm -rf /"}, "variable 'code' must match"),
        ({"colour": "red", "count": "many"}, "variable 'count' expects a integer"),
        ({"colour": "red", "count": True}, "variable 'count' expects a integer"),
        ({}, "variable 'colour' is required"),
        ({"colour": "red", "extra": "x"}, "the mission has no variable 'extra'"),
    ],
)
def test_a_granted_start_with_variables_outside_their_declarations_is_refused(
    tmp_path: Path, variables: dict[str, object], named: str
) -> None:
    key = home_keys(tmp_path)
    acme = issue(key, Claims(sub="acme-ci", role=Role.TENANT, tenant="acme"))
    metadata = (("x-rustchain-tenant", "acme"), ("authorization", f"Bearer {acme}"))
    plan = plan_of(CHOOSING)

    async def scenario() -> tuple[grpc.StatusCode, str, str]:
        async with running_services(tmp_path, ("verifier", "executor")) as services:
            verifier = verifier_pb2_grpc.VerifierServiceStub(services.channel("verifier"))
            executor = executor_pb2_grpc.ExecutorServiceStub(services.channel("executor"))
            verdict = await verifier.VerifyPlan(
                verifier_pb2.VerifyPlanRequest(plan_json=plan.to_json(), mission_id="m1"),
                metadata=metadata,
            )
            assert verdict.safe and verdict.verdict_token

            async def start(chosen: dict[str, object], mission_id: str) -> tuple[str, str]:
                request = executor_pb2.StartMissionRequest(
                    plan_json=plan.to_json(),
                    mission_id=mission_id,
                    verdict_token=verdict.verdict_token,
                    variables_json=json.dumps(chosen),
                )
                try:
                    await executor.StartMission(request, metadata=metadata)
                except grpc.aio.AioRpcError as refused:
                    return refused.code().name, refused.details() or ""
                return "OK", ""

            code, details = await start(variables, "m1")
            # The same grant with variables that fit starts the mission.
            accepted, _ = await start({"colour": "green"}, "m1")
            return grpc.StatusCode[code], details, accepted

    code, details, accepted = asyncio.run(scenario())
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert named in details
    assert accepted == "OK"
