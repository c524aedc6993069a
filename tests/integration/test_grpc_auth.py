"""Every RPC checks its bearer token: no tenant reads, lists, watches, cancels or searches another
tenant's missions or memory; auditors only read what they are granted; bad tokens are refused."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rustchain.cli.serve import serve
from rustchain.domain.access.credentials import Claims, Role
from rustchain.generated.rustchain.executor.v1 import executor_pb2, executor_pb2_grpc
from rustchain.generated.rustchain.memory.v1 import memory_pb2, memory_pb2_grpc
from rustchain.generated.rustchain.planner.v1 import planner_pb2, planner_pb2_grpc
from rustchain.generated.rustchain.trainer.v1 import trainer_pb2, trainer_pb2_grpc
from rustchain.generated.rustchain.verifier.v1 import verifier_pb2, verifier_pb2_grpc
from rustchain.platform.credentials.tokens import issue
from rustchain.platform.grpc.client import open_channel
from rustchain.platform.nats.server import NatsServer
from tests.integration.grpc_helpers import running_services
from tests.keys import home_keys
from tests.paths import REPO

HELLO = (REPO / "missions" / "hello.yaml").read_text()


def _meta(tenant: str, token: str | None) -> tuple[tuple[str, str], ...]:
    pairs = [("x-rustchain-tenant", tenant)]
    if token is not None:
        pairs.append(("authorization", f"Bearer {token}"))
    return tuple(pairs)


async def _code(call: Awaitable[Any]) -> grpc.StatusCode:
    try:
        result = call
        if hasattr(result, "__aiter__"):
            async for _ in result:  # type: ignore[attr-defined]
                pass
        else:
            await result
    except grpc.aio.AioRpcError as error:
        assert "tangerine" not in (error.details() or ""), "a refusal must not leak data"
        return error.code()
    return grpc.StatusCode.OK


def test_tokens_scope_every_rpc_to_their_tenant(tmp_path: Path) -> None:
    key = home_keys(tmp_path)
    acme = issue(key, Claims(sub="acme-ci", role=Role.TENANT, tenant="acme"))
    globex = issue(key, Claims(sub="globex-ci", role=Role.TENANT, tenant="globex"))
    auditor = issue(key, Claims(sub="audit", role=Role.AUDITOR, tenants=["acme"]))
    admin = issue(key, Claims(sub="root", role=Role.ADMIN))
    expired = issue(key, Claims(sub="old", role=Role.TENANT, tenant="acme"), expires_in=-60)
    forged = issue(Ed25519PrivateKey.generate(), Claims(sub="evil", role=Role.ADMIN))

    async def scenario() -> None:
        async with running_services(tmp_path) as services:
            planner = planner_pb2_grpc.PlannerServiceStub(services.channel("planner"))
            executor = executor_pb2_grpc.ExecutorServiceStub(services.channel("executor"))
            memory = memory_pb2_grpc.MemoryServiceStub(services.channel("memory"))
            verifier = verifier_pb2_grpc.VerifierServiceStub(services.channel("verifier"))

            submitted = await planner.SubmitMission(
                planner_pb2.SubmitMissionRequest(yaml=HELLO, file_name="hello.yaml"),
                metadata=_meta("acme", acme),
            )
            assert submitted.accepted
            mission = submitted.mission_id
            await memory.Put(
                memory_pb2.PutRequest(collection="notes", id="n1", content="tangerine"),
                metadata=_meta("acme", acme),
            )

            calls: dict[str, Callable[[tuple[tuple[str, str], ...]], Awaitable[Any]]] = {
                "GetMission": lambda m: executor.GetMission(
                    executor_pb2.GetMissionRequest(mission_id=mission), metadata=m
                ),
                "ListMissions": lambda m: executor.ListMissions(
                    executor_pb2.ListMissionsRequest(), metadata=m
                ),
                "WatchMission": lambda m: executor.WatchMission(
                    executor_pb2.WatchMissionRequest(mission_id=mission), metadata=m
                ),
                "CancelMission": lambda m: executor.CancelMission(
                    executor_pb2.CancelMissionRequest(mission_id=mission), metadata=m
                ),
                "Get": lambda m: memory.Get(
                    memory_pb2.GetRequest(collection="notes", id="n1"), metadata=m
                ),
                "List": lambda m: memory.List(
                    memory_pb2.ListRequest(collection="notes"), metadata=m
                ),
                "Search": lambda m: memory.Search(
                    memory_pb2.SearchRequest(collection="notes", query="tangerine"), metadata=m
                ),
                "Delete": lambda m: memory.Delete(
                    memory_pb2.DeleteRequest(collection="notes", id="n1"), metadata=m
                ),
                "Put": lambda m: memory.Put(
                    memory_pb2.PutRequest(collection="notes", content="x"), metadata=m
                ),
                "PutVector": lambda m: memory.PutVector(
                    memory_pb2.PutVectorRequest(collection="kb", vector=[1.0], content="x"),
                    metadata=m,
                ),
                "Nearest": lambda m: memory.Nearest(
                    memory_pb2.NearestRequest(collection="kb", vector=[1.0]), metadata=m
                ),
                "SubmitMission": lambda m: planner.SubmitMission(
                    planner_pb2.SubmitMissionRequest(yaml=HELLO, file_name="hello.yaml"), metadata=m
                ),
                "ValidateMission": lambda m: planner.ValidateMission(
                    planner_pb2.ValidateMissionRequest(yaml=HELLO, file_name="hello.yaml"),
                    metadata=m,
                ),
                "VerifyPlan": lambda m: verifier.VerifyPlan(
                    verifier_pb2.VerifyPlanRequest(plan_json="{}"), metadata=m
                ),
            }
            writes = {"CancelMission", "Delete", "Put", "PutVector", "SubmitMission", "VerifyPlan"}
            for name, call in calls.items():
                # Another tenant's token naming acme's data: refused, whatever the method.
                assert (
                    await _code(call(_meta("acme", globex))) is grpc.StatusCode.PERMISSION_DENIED
                ), name
                for bad in (None, expired, forged):
                    assert (
                        await _code(call(_meta("acme", bad))) is grpc.StatusCode.UNAUTHENTICATED
                    ), name
                auditor_code = await _code(call(_meta("acme", auditor)))
                if name in writes:
                    assert auditor_code is grpc.StatusCode.PERMISSION_DENIED, name
                else:
                    assert auditor_code is not grpc.StatusCode.PERMISSION_DENIED, name
                assert (
                    await _code(call(_meta("globex", auditor))) is grpc.StatusCode.PERMISSION_DENIED
                )
            found = await memory.Search(
                memory_pb2.SearchRequest(collection="notes", query="tangerine"),
                metadata=_meta("acme", admin),
            )
            assert [d.id for d in found.documents] == ["n1"]

    asyncio.run(scenario())


def test_health_stays_open_for_probes(tmp_path: Path) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    home_keys(tmp_path)

    async def scenario() -> None:
        async with running_services(tmp_path, ("memory",)) as services:
            health = health_pb2_grpc.HealthStub(services.channel("memory"))
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING

    asyncio.run(scenario())


@pytest.mark.parametrize("role", ["tenant"])
def test_token_create_refuses_a_tenant_token_without_its_tenant(tmp_path: Path, role: str) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "rustchain", "token", "create", "--role", role],
        capture_output=True,
        text=True,
        env={"RUSTCHAIN_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=False,
    )

    assert result.returncode == 2
    assert "a tenant token names its tenant" in result.stderr


def test_trainer_rpcs_are_scoped_to_their_tenant(tmp_path: Path, nats_server: NatsServer) -> None:
    key = home_keys(tmp_path)
    acme = issue(key, Claims(sub="acme-ci", role=Role.TENANT, tenant="acme"))
    globex = issue(key, Claims(sub="globex-ci", role=Role.TENANT, tenant="globex"))
    auditor = issue(key, Claims(sub="audit", role=Role.AUDITOR, tenants=["acme"]))
    expired = issue(key, Claims(sub="old", role=Role.TENANT, tenant="acme"), expires_in=-60)
    environ = {"RUSTCHAIN_HOME": str(tmp_path), "NATS_URL": nats_server.url}

    async def scenario() -> None:
        stop = asyncio.Event()
        bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        server = asyncio.ensure_future(serve("trainer", 0, environ, {}, stop, bound.set_result))
        port = await asyncio.wait_for(bound, 30)
        try:
            async with open_channel(f"127.0.0.1:{port}") as channel:
                trainer = trainer_pb2_grpc.TrainerServiceStub(channel)
                calls: dict[str, Callable[[tuple[tuple[str, str], ...]], Awaitable[Any]]] = {
                    "GetTrajectory": lambda m: trainer.GetTrajectory(
                        trainer_pb2.GetTrajectoryRequest(mission_id="m1"), metadata=m
                    ),
                    "ListTrajectories": lambda m: trainer.ListTrajectories(
                        trainer_pb2.ListTrajectoriesRequest(), metadata=m
                    ),
                }
                for name, call in calls.items():
                    denied = await _code(call(_meta("acme", globex)))
                    assert denied is grpc.StatusCode.PERMISSION_DENIED, name
                    for bad in (None, expired):
                        refused = await _code(call(_meta("acme", bad)))
                        assert refused is grpc.StatusCode.UNAUTHENTICATED, name
                    granted = await _code(call(_meta("acme", auditor)))
                    assert granted is not grpc.StatusCode.PERMISSION_DENIED, name
                    own = await _code(call(_meta("acme", acme)))
                    assert own in (grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND), name
        finally:
            stop.set()
            await server

    asyncio.run(scenario())
