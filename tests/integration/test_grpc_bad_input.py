"""Bad input on every RPC of the five services (invalid UTF-8, oversized payloads and fields,
absurd numbers, malformed ids and tenants, corrupt wire format) is INVALID_ARGUMENT with a message
naming the field or the problem, and the same server answers a good call and its health check
right after. No request message has an enum field; the guard's check of unknown enum numbers is
proven on a server of its own."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool, type_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rustchain.domain.access.credentials import Claims, Role
from rustchain.generated.rustchain.executor.v1 import executor_pb2
from rustchain.generated.rustchain.memory.v1 import memory_pb2
from rustchain.generated.rustchain.planner.v1 import planner_pb2
from rustchain.generated.rustchain.trainer.v1 import trainer_pb2
from rustchain.generated.rustchain.verifier.v1 import verifier_pb2
from rustchain.memory.servicer import MemoryServicer
from rustchain.memory.servicer import binding as memory_binding
from rustchain.platform.credentials.tokens import issue
from rustchain.platform.grpc.decoding import MAX_MESSAGE_VARIABLE
from rustchain.platform.grpc.server import GrpcServerError, ServiceBinding, start_server
from rustchain.platform.nats.server import NatsServer, NatsServerSettings
from rustchain.platform.storage.memory_store import SqliteMemoryStore
from tests.integration.grpc_helpers import FULL_NAMES, services_in_thread
from tests.keys import home_keys
from tests.paths import REPO

HELLO = (REPO / "missions" / "hello.yaml").read_text()
ORDER = ("verifier", "memory", "executor", "planner", "trainer")
STREAMING = {"WatchMission", "Optimize", "ExportTrajectories"}
CALL_TIMEOUT_SECONDS = 30.0
KIB, MIB = 1024, 1024 * 1024
MARK = "QQQQ"
NOT_UTF8 = b"\xc3\x28\xa0\xa1"  # a lead byte without its continuation, then two stray ones
CORRUPT = b"\xff\xff\xff"


@dataclass(frozen=True)
class Deployment:
    """The five services with auth on, a finished mission and a valid plan to refer to."""

    channels: dict[str, grpc.Channel]
    token: str
    mission_id: str
    plan: dict[str, object]

    def metadata(self, tenant: str = "acme") -> tuple[tuple[str, str], ...]:
        """An admin's call for the tenant (admin: authorisation never hides a bad tenant)."""
        return (("x-rustchain-tenant", tenant), ("authorization", f"Bearer {self.token}"))


def _bad_utf8(message: Message) -> bytes:
    """The message's bytes with the text MARK, wherever it is, replaced by invalid UTF-8."""
    data = message.SerializeToString()
    assert data.count(MARK.encode()) == 1
    return data.replace(MARK.encode(), NOT_UTF8)


def _call(
    deployment: Deployment,
    service: str,
    method: str,
    request: Message | bytes,
    metadata: tuple[tuple[str, str], ...],
) -> list[bytes]:
    """Call with raw bytes (a hand-made request goes out untouched); the replies' bytes."""
    channel = deployment.channels[service]
    path = f"/{FULL_NAMES[service]}/{method}"
    data = request if isinstance(request, bytes) else request.SerializeToString()
    if method in STREAMING:
        stream = channel.unary_stream(path)(data, metadata=metadata, timeout=CALL_TIMEOUT_SECONDS)
        return list(stream)
    return [channel.unary_unary(path)(data, metadata=metadata, timeout=CALL_TIMEOUT_SECONDS)]


def _plan_json(deployment: Deployment, **changes: object) -> str:
    plan = json.loads(json.dumps(deployment.plan))
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        target = plan
        for key in path:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[last] = value
    return json.dumps(plan)


def _good_call(deployment: Deployment, service: str) -> None:
    """A valid call of the service: it must still answer after a bad one."""
    meta = deployment.metadata()
    if service == "planner":
        request: Message = planner_pb2.ValidateMissionRequest(yaml=HELLO)
        reply = planner_pb2.ValidateMissionResponse.FromString(
            _call(deployment, service, "ValidateMission", request, meta)[0]
        )
        assert reply.valid
    elif service == "verifier":
        request = verifier_pb2.VerifyPlanRequest(plan_json=_plan_json(deployment))
        verdict = verifier_pb2.VerifyPlanResponse.FromString(
            _call(deployment, service, "VerifyPlan", request, meta)[0]
        )
        assert verdict.safe
    elif service == "executor":
        request = executor_pb2.GetMissionRequest(mission_id=deployment.mission_id)
        summary = executor_pb2.MissionSummary.FromString(
            _call(deployment, service, "GetMission", request, meta)[0]
        )
        assert summary.status == "succeeded"
    elif service == "memory":
        request = memory_pb2.PutRequest(collection="notes", id="n1", content="still here")
        _call(deployment, service, "Put", request, meta)
    else:
        _call(deployment, service, "ListTrajectories", trainer_pb2.ListTrajectoriesRequest(), meta)
    health = health_pb2_grpc.HealthStub(deployment.channels[service])
    checked = health.Check(health_pb2.HealthCheckRequest(service=FULL_NAMES[service]))
    assert checked.status == health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """One deployment for every case: starting five services per case would dominate the run."""
    home = tmp_path_factory.mktemp("home")
    key = home_keys(home)
    token = issue(key, Claims(sub="root", role=Role.ADMIN))
    nats = NatsServer(NatsServerSettings(store_dir=home / "nats"))
    nats.start()
    try:
        with services_in_thread(home, ORDER, nats.url) as endpoints:
            channels = {
                name: grpc.insecure_channel(endpoint) for name, endpoint in endpoints.items()
            }
            try:
                started = Deployment(channels, token, "", {})
                meta = started.metadata()
                request = planner_pb2.SubmitMissionRequest(yaml=HELLO, file_name="hello.yaml")
                submitted = planner_pb2.SubmitMissionResponse.FromString(
                    _call(started, "planner", "SubmitMission", request, meta)[0]
                )
                assert submitted.accepted, [d.message for d in submitted.diagnostics]
                watch = executor_pb2.WatchMissionRequest(mission_id=submitted.mission_id)
                events = _call(started, "executor", "WatchMission", watch, meta)
                last = executor_pb2.MissionEvent.FromString(events[-1])
                assert last.type == "MissionFinished"
                validated = planner_pb2.ValidateMissionResponse.FromString(
                    _call(
                        started,
                        "planner",
                        "ValidateMission",
                        planner_pb2.ValidateMissionRequest(yaml=HELLO),
                        meta,
                    )[0]
                )
                yield Deployment(
                    channels, token, submitted.mission_id, json.loads(validated.plan_json)
                )
            finally:
                for channel in channels.values():
                    channel.close()
    finally:
        nats.stop()


Request = Callable[[Deployment], Message | bytes]


@dataclass(frozen=True)
class Case:
    """A bad request to one RPC and the words its refusal must contain."""

    name: str
    service: str
    method: str
    request: Request
    expected: tuple[str, ...]
    tenant: str = "acme"


def _case(
    name: str,
    service: str,
    method: str,
    request: Request,
    *expected: str,
    tenant: str = "acme",
) -> Case:
    return Case(f"{method}-{name}", service, method, request, expected, tenant)


UTF8 = "is not valid UTF-8"
CASES = [
    # planner
    _case(
        "yaml-utf8",
        "planner",
        "SubmitMission",
        lambda d: _bad_utf8(planner_pb2.SubmitMissionRequest(yaml=MARK)),
        "field 'yaml'",
        UTF8,
    ),
    _case(
        "variable-name-utf8",
        "planner",
        "SubmitMission",
        lambda d: _bad_utf8(planner_pb2.SubmitMissionRequest(yaml=HELLO, variables={MARK: "x"})),
        "field 'variables.key'",
        UTF8,
    ),
    _case(
        "yaml-oversized",
        "planner",
        "SubmitMission",
        lambda d: planner_pb2.SubmitMissionRequest(yaml="#" * (MIB + 1)),
        "yaml is 1,048,577 bytes; the limit is 1,048,576 bytes",
    ),
    _case(
        "message-oversized",
        "planner",
        "SubmitMission",
        lambda d: planner_pb2.SubmitMissionRequest(yaml="#" * (4 * MIB)),
        "request is 4,194,309 bytes; the limit is 4,194,304 bytes",
        MAX_MESSAGE_VARIABLE,
    ),
    _case(
        "too-many-variables",
        "planner",
        "SubmitMission",
        lambda d: planner_pb2.SubmitMissionRequest(
            yaml=HELLO, variables={f"v{i}": "1" for i in range(257)}
        ),
        "variables has 257 entries; the limit is 256",
    ),
    _case(
        "relative-workspace",
        "planner",
        "SubmitMission",
        lambda d: planner_pb2.SubmitMissionRequest(yaml=HELLO, workspace="ws/here"),
        "workspace must be an absolute path",
    ),
    _case(
        "file-name-with-newline",
        "planner",
        "SubmitMission",
        lambda d: planner_pb2.SubmitMissionRequest(yaml=HELLO, file_name="a\nb.yaml"),
        "file_name must not contain control characters",
    ),
    _case(
        "malformed-tenant",
        "planner",
        "SubmitMission",
        lambda d: planner_pb2.SubmitMissionRequest(yaml=HELLO),
        "x-rustchain-tenant",
        "invalid tenant 'Acme Corp'",
        tenant="Acme Corp",
    ),
    _case("corrupt", "planner", "SubmitMission", lambda d: CORRUPT, "cannot be decoded"),
    _case(
        "yaml-utf8",
        "planner",
        "ValidateMission",
        lambda d: _bad_utf8(planner_pb2.ValidateMissionRequest(yaml=MARK)),
        "field 'yaml'",
        UTF8,
    ),
    _case(
        "long-file-name",
        "planner",
        "ValidateMission",
        lambda d: planner_pb2.ValidateMissionRequest(yaml=HELLO, file_name="f" * 300),
        "file_name is 300 bytes; the limit is 256 bytes",
    ),
    _case(
        "variable-oversized",
        "planner",
        "ValidateMission",
        lambda d: planner_pb2.ValidateMissionRequest(yaml=HELLO, variables={"who": "x" * 65537}),
        "variables['who'] is 65,537 bytes; the limit is 65,536 bytes",
    ),
    _case(
        "malformed-tenant",
        "planner",
        "ValidateMission",
        lambda d: planner_pb2.ValidateMissionRequest(yaml=HELLO),
        "x-rustchain-tenant",
        tenant="../etc",
    ),
    # verifier
    _case(
        "plan-utf8",
        "verifier",
        "VerifyPlan",
        lambda d: _bad_utf8(verifier_pb2.VerifyPlanRequest(plan_json=MARK)),
        "field 'plan_json'",
        UTF8,
    ),
    _case(
        "no-plan",
        "verifier",
        "VerifyPlan",
        lambda d: verifier_pb2.VerifyPlanRequest(),
        "plan_json is required",
    ),
    _case(
        "not-a-plan",
        "verifier",
        "VerifyPlan",
        lambda d: verifier_pb2.VerifyPlanRequest(plan_json='{"steps": 1}'),
        "validation errors for Plan",
        "mission_name",
    ),
    _case(
        "absurd-parallelism",
        "verifier",
        "VerifyPlan",
        lambda d: verifier_pb2.VerifyPlanRequest(
            plan_json=_plan_json(d, config__max_parallel_steps=10**12)
        ),
        "max_parallel_steps",
        "less than or equal to 10000",
    ),
    _case(
        "placeholder-mission-id",
        "verifier",
        "VerifyPlan",
        lambda d: verifier_pb2.VerifyPlanRequest(plan_json=_plan_json(d), mission_id="_"),
        "mission_id",
        "stands for no mission",
    ),
    _case(
        "path-as-mission-id",
        "verifier",
        "VerifyPlan",
        lambda d: verifier_pb2.VerifyPlanRequest(plan_json=_plan_json(d), mission_id="../x"),
        "mission_id: invalid mission id '../x'",
    ),
    # executor
    _case(
        "plan-utf8",
        "executor",
        "StartMission",
        lambda d: _bad_utf8(executor_pb2.StartMissionRequest(plan_json=MARK)),
        "field 'plan_json'",
        UTF8,
    ),
    _case(
        "variables-not-an-object",
        "executor",
        "StartMission",
        lambda d: executor_pb2.StartMissionRequest(plan_json=_plan_json(d), variables_json="[1]"),
        "variables_json must be a JSON object, found list",
    ),
    _case(
        "variables-not-json",
        "executor",
        "StartMission",
        lambda d: executor_pb2.StartMissionRequest(plan_json=_plan_json(d), variables_json="{"),
        "variables_json is not JSON",
    ),
    _case(
        "relative-workspace",
        "executor",
        "StartMission",
        lambda d: executor_pb2.StartMissionRequest(plan_json=_plan_json(d), workspace="w"),
        "workspace must be an absolute path, found 'w'",
    ),
    _case(
        "long-mission-id",
        "executor",
        "StartMission",
        lambda d: executor_pb2.StartMissionRequest(plan_json=_plan_json(d), mission_id="m" * 300),
        "mission_id is 300 bytes; the limit is 256 bytes",
    ),
    _case(
        "absurd-attempts",
        "executor",
        "StartMission",
        lambda d: executor_pb2.StartMissionRequest(
            plan_json=_plan_json(d, steps__0__retry={"max_attempts": 10**9})
        ),
        "max_attempts",
        "less than or equal to 100",
    ),
    _case(
        "no-mission-id",
        "executor",
        "WatchMission",
        lambda d: executor_pb2.WatchMissionRequest(),
        "mission_id is required",
    ),
    _case(
        "negative-version",
        "executor",
        "WatchMission",
        lambda d: executor_pb2.WatchMissionRequest(mission_id=d.mission_id, after_version=-1),
        "after_version must be between 0 and",
        "found -1",
    ),
    _case(
        "version-beyond-the-last",
        "executor",
        "WatchMission",
        lambda d: executor_pb2.WatchMissionRequest(mission_id=d.mission_id, after_version=2**62),
        "after_version 4,611,686,018,427,387,904 is beyond the mission's last version",
    ),
    _case(
        "mission-id-utf8",
        "executor",
        "WatchMission",
        lambda d: _bad_utf8(executor_pb2.WatchMissionRequest(mission_id=MARK)),
        "field 'mission_id'",
        UTF8,
    ),
    _case(
        "mission-id-utf8",
        "executor",
        "GetMission",
        lambda d: _bad_utf8(executor_pb2.GetMissionRequest(mission_id=MARK)),
        "field 'mission_id'",
        UTF8,
    ),
    _case(
        "malformed-mission-id",
        "executor",
        "GetMission",
        lambda d: executor_pb2.GetMissionRequest(mission_id="a b"),
        "invalid mission id 'a b'",
    ),
    _case("corrupt", "executor", "ListMissions", lambda d: CORRUPT, "cannot be decoded"),
    _case(
        "negative-page-size",
        "executor",
        "ListMissions",
        lambda d: executor_pb2.ListMissionsRequest(page_size=-1),
        "page_size must be between 0",
    ),
    _case(
        "foreign-page-token",
        "executor",
        "ListMissions",
        lambda d: executor_pb2.ListMissionsRequest(page_token="not-ours"),
        "is not one this service gave",
    ),
    _case(
        "malformed-tenant",
        "executor",
        "ListMissions",
        lambda d: executor_pb2.ListMissionsRequest(),
        "x-rustchain-tenant",
        tenant="t" * 64,
    ),
    _case(
        "long-reason",
        "executor",
        "CancelMission",
        lambda d: executor_pb2.CancelMissionRequest(mission_id=d.mission_id, reason="r" * 4097),
        "reason is 4,097 bytes; the limit is 4,096 bytes",
    ),
    _case(
        "no-mission-id",
        "executor",
        "CancelMission",
        lambda d: executor_pb2.CancelMissionRequest(),
        "mission_id is required",
    ),
    # memory
    _case(
        "content-utf8",
        "memory",
        "Put",
        lambda d: _bad_utf8(memory_pb2.PutRequest(collection="notes", content=MARK)),
        "field 'content'",
        UTF8,
    ),
    _case(
        "content-oversized",
        "memory",
        "Put",
        lambda d: memory_pb2.PutRequest(collection="notes", content="é" * (MIB // 2 + 1)),
        "content is 1,048,578 bytes; the limit is 1,048,576 bytes",
    ),
    _case(
        "metadata-not-an-object",
        "memory",
        "Put",
        lambda d: memory_pb2.PutRequest(collection="notes", content="x", metadata_json="[1]"),
        "metadata_json must be a JSON object",
    ),
    _case(
        "metadata-oversized",
        "memory",
        "Put",
        lambda d: memory_pb2.PutRequest(
            collection="notes", content="x", metadata_json=json.dumps({"a": "x" * 65536})
        ),
        "metadata_json is 65,545 bytes; the limit is 65,536 bytes",
    ),
    _case(
        "no-collection",
        "memory",
        "Put",
        lambda d: memory_pb2.PutRequest(content="x"),
        "collection is required",
    ),
    _case(
        "collection-with-tab",
        "memory",
        "Put",
        lambda d: memory_pb2.PutRequest(collection="no\ttes", content="x"),
        "collection must not contain control characters",
    ),
    _case(
        "long-id",
        "memory",
        "Put",
        lambda d: memory_pb2.PutRequest(collection="notes", id="i" * 300, content="x"),
        "id is 300 bytes; the limit is 256 bytes",
    ),
    _case(
        "no-id",
        "memory",
        "Get",
        lambda d: memory_pb2.GetRequest(collection="notes"),
        "id is required",
    ),
    _case(
        "collection-utf8",
        "memory",
        "Get",
        lambda d: _bad_utf8(memory_pb2.GetRequest(collection=MARK, id="n1")),
        "field 'collection'",
        UTF8,
    ),
    _case(
        "long-collection",
        "memory",
        "Delete",
        lambda d: memory_pb2.DeleteRequest(collection="c" * 257, id="n1"),
        "collection is 257 bytes; the limit is 256 bytes",
    ),
    _case(
        "negative-limit",
        "memory",
        "List",
        lambda d: memory_pb2.ListRequest(collection="notes", limit=-1),
        "limit must be between 0 and 1,000, found -1",
    ),
    _case(
        "huge-limit",
        "memory",
        "List",
        lambda d: memory_pb2.ListRequest(collection="notes", limit=2**31 - 1),
        "limit must be between 0 and 1,000, found 2,147,483,647",
    ),
    _case(
        "query-oversized",
        "memory",
        "Search",
        lambda d: memory_pb2.SearchRequest(collection="notes", query="w " * 8193),
        "query is 16,386 bytes; the limit is 16,384 bytes",
    ),
    _case(
        "huge-limit",
        "memory",
        "Search",
        lambda d: memory_pb2.SearchRequest(collection="notes", query="w", limit=5000),
        "limit must be between 0 and 1,000, found 5,000",
    ),
    _case(
        "malformed-tenant",
        "memory",
        "Search",
        lambda d: memory_pb2.SearchRequest(collection="notes", query="w"),
        "x-rustchain-tenant",
        tenant="ACME",
    ),
    _case(
        "nan-vector",
        "memory",
        "PutVector",
        lambda d: memory_pb2.PutVectorRequest(collection="kb", vector=[float("nan")], content="x"),
        "vector must hold 1 to 16384 finite numbers",
    ),
    _case(
        "empty-vector",
        "memory",
        "Nearest",
        lambda d: memory_pb2.NearestRequest(collection="kb"),
        "vector must hold 1 to 16384 finite numbers",
    ),
    _case(
        "oversized-vector",
        "memory",
        "Nearest",
        lambda d: memory_pb2.NearestRequest(collection="kb", vector=[0.5] * 16385),
        "vector must hold 1 to 16384 finite numbers",
    ),
    # trainer
    _case(
        "mission-id-utf8",
        "trainer",
        "GetTrajectory",
        lambda d: _bad_utf8(trainer_pb2.GetTrajectoryRequest(mission_id=MARK)),
        "field 'mission_id'",
        UTF8,
    ),
    _case(
        "no-mission-id",
        "trainer",
        "GetTrajectory",
        lambda d: trainer_pb2.GetTrajectoryRequest(),
        "mission_id is required",
    ),
    _case(
        "malformed-mission-id",
        "trainer",
        "GetTrajectory",
        lambda d: trainer_pb2.GetTrajectoryRequest(mission_id="x/y"),
        "invalid mission id 'x/y'",
    ),
    _case("corrupt", "trainer", "ListTrajectories", lambda d: CORRUPT, "cannot be decoded"),
    _case(
        "malformed-tenant",
        "trainer",
        "ListTrajectories",
        lambda d: trainer_pb2.ListTrajectoriesRequest(),
        "x-rustchain-tenant",
        tenant="-acme",
    ),
    _case(
        "broken-suite",
        "trainer",
        "Optimize",
        lambda d: trainer_pb2.OptimizeRequest(
            suite_yaml="name: s\nscenarios: 3\n", mission_yaml=HELLO
        ),
        "suite.yaml:",
    ),
    _case(
        "oversized-mission-name",
        "trainer",
        "ListPolicies",
        lambda d: trainer_pb2.ListPoliciesRequest(mission="m" * 300),
        "mission is 300 bytes",
    ),
    _case(
        "no-mission",
        "trainer",
        "RollbackPolicy",
        lambda d: trainer_pb2.RollbackPolicyRequest(),
        "mission is required",
    ),
    _case(
        "unknown-format",
        "trainer",
        "ExportTrajectories",
        lambda d: trainer_pb2.ExportTrajectoriesRequest(format="csv"),
        "'format' is 'csv'",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_invalid_argument_and_the_service_keeps_serving(
    deployment: Deployment, case: Case, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _call(
            deployment,
            case.service,
            case.method,
            case.request(deployment),
            deployment.metadata(case.tenant),
        )
    error = caught.value
    assert isinstance(error, grpc.Call)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    for words in case.expected:
        assert words in (error.details() or "")
    # Refused deliberately, not as a crash: grpc logs unexpected handler errors with tracebacks.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    _good_call(deployment, case.service)


def test_every_rpc_has_a_bad_input_case() -> None:
    covered = {(case.service, case.method) for case in CASES}
    for service, full_name in FULL_NAMES.items():
        described = descriptor_pool.Default().FindServiceByName(full_name)
        for method in described.methods:
            assert (service, method.name) in covered, f"no bad-input case for {method.full_name}"


def test_a_caller_without_a_token_is_refused_as_such_whatever_bytes_it_sends(
    deployment: Deployment,
) -> None:
    # Authentication is decided before the request is looked at: no hint about what is valid.
    request = _bad_utf8(memory_pb2.GetRequest(collection=MARK, id="n1"))
    with pytest.raises(grpc.RpcError) as caught:
        _call(deployment, "memory", "Get", request, (("x-rustchain-tenant", "acme"),))
    assert isinstance(caught.value, grpc.Call)
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_a_finished_mission_watched_from_its_last_version_ends_at_once(
    deployment: Deployment,
) -> None:
    meta = deployment.metadata()
    watch = executor_pb2.WatchMissionRequest(mission_id=deployment.mission_id)
    events = [
        executor_pb2.MissionEvent.FromString(e)
        for e in _call(deployment, "executor", "WatchMission", watch, meta)
    ]
    watch.after_version = events[-1].version
    # Before, such a stream waited for a MissionFinished it had already sent: forever.
    assert _call(deployment, "executor", "WatchMission", watch, meta) == []


def _holds_enum(message: Descriptor, seen: frozenset[str] = frozenset()) -> bool:
    if message.full_name in seen:
        return False
    return any(
        field.enum_type is not None
        or (
            field.message_type is not None
            and _holds_enum(field.message_type, seen | {message.full_name})
        )
        for field in message.fields
    )


def test_no_request_of_the_five_services_holds_an_enum() -> None:
    # Unknown enum numbers cannot reach a servicer today; a request that gains an enum field
    # fails here, as a reminder to add its bad-input case (the guard already refuses them).
    for full_name in FULL_NAMES.values():
        for method in descriptor_pool.Default().FindServiceByName(full_name).methods:
            assert not _holds_enum(method.input_type), method.full_name


def _echo_kind_binding() -> ServiceBinding:
    """A test service whose request (google.protobuf.Field) holds an open enum, `kind`."""

    async def echo(request: type_pb2.Field, context: object) -> type_pb2.Field:
        return request

    handler = grpc.method_handlers_generic_handler(
        "test.Echo",
        {
            "Echo": grpc.unary_unary_rpc_method_handler(
                echo,
                request_deserializer=type_pb2.Field.FromString,
                response_serializer=type_pb2.Field.SerializeToString,
            )
        },
    )
    return ServiceBinding(
        None, lambda _, server: server.add_generic_rpc_handlers((handler,)), "test.Echo"
    )


def test_an_unknown_enum_number_is_invalid_argument() -> None:
    async def scenario() -> None:
        running = await start_server([_echo_kind_binding()])
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        try:
            echo = channel.unary_unary("/test.Echo/Echo")
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await echo(type_pb2.Field(kind=99, name="n").SerializeToString())
            assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "field 'kind' has no value 99 in google.protobuf.Field.Kind" in (
                caught.value.details() or ""
            )
            known = type_pb2.Field(kind=type_pb2.Field.TYPE_STRING, name="n")
            assert await echo(known.SerializeToString()) == known.SerializeToString()
        finally:
            await channel.close()
            await running.stop()

    asyncio.run(scenario())


def test_the_request_size_limit_is_a_setting_and_grpc_refuses_far_larger_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteMemoryStore(tmp_path / "memory.sqlite3")

    async def scenario() -> None:
        running = await start_server([memory_binding(MemoryServicer(store))])
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        put = channel.unary_unary("/rustchain.memory.v1.MemoryService/Put")
        try:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await put(
                    memory_pb2.PutRequest(collection="c", content="x" * 1100).SerializeToString()
                )
            assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "the limit is 1,024 bytes" in (caught.value.details() or "")
            # Beyond twice the limit, grpc core refuses before reading: RESOURCE_EXHAUSTED.
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await put(
                    memory_pb2.PutRequest(collection="c", content="x" * 4096).SerializeToString()
                )
            assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "larger than max" in (caught.value.details() or "")
            await put(memory_pb2.PutRequest(collection="c", content="fits").SerializeToString())
        finally:
            await channel.close()
            await running.stop()

    monkeypatch.setenv(MAX_MESSAGE_VARIABLE, "1024")
    try:
        asyncio.run(scenario())
        monkeypatch.setenv(MAX_MESSAGE_VARIABLE, "lots")
        with pytest.raises(
            GrpcServerError, match=f"{MAX_MESSAGE_VARIABLE} must be a positive integer, not 'lots'"
        ):
            asyncio.run(start_server([memory_binding(MemoryServicer(store))]))
    finally:
        store.close()
