"""Per-tenant quotas: concurrent missions are refused past the quota; a mission that reaches its
event quota is stopped and still recorded to its end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from rustchain.bootstrap.executor import build_executor
from rustchain.domain.access.quotas import QuotaExceededError, TenantQuotas, stream_hard_limit
from rustchain.domain.events.chain import verify_chain
from rustchain.executor.application import ExecutorApplication
from rustchain.generated.rustchain.executor.v1 import executor_pb2, executor_pb2_grpc
from rustchain.platform.nats.jetstream import StreamSettings, connect, ensure_stream
from rustchain.platform.nats.server import NatsServer
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.steps import default_registry
from tests.integration.grpc_helpers import running_services
from tests.unit.compile_helpers import plan_of

QUOTA = 200_000
ONE_STEP = 'version: "1.0"\nname: one\nsteps:\n  - {id: a, step_type: noop}\n'


def _executor(home: Path, quotas: TenantQuotas) -> ExecutorApplication:
    store = open_event_store(EventStoreSettings(name="executor", home=home))
    return build_executor(
        {"RUSTCHAIN_HOME": str(home)},
        store,
        registry=default_registry(include_plugins=False),
        quotas=quotas,
        policy_for=None,
    )


def test_a_tenant_past_its_concurrent_mission_quota_is_refused_others_are_not(
    tmp_path: Path,
) -> None:
    executor = _executor(tmp_path, TenantQuotas(max_concurrent_missions=2))
    plan = plan_of(ONE_STEP)
    first = executor.start("acme", plan, {})
    executor.start("acme", plan, {})

    with pytest.raises(QuotaExceededError, match="tenant 'acme' already runs 2 missions"):
        executor.start("acme", plan, {})
    executor.start("globex", plan, {})
    asyncio.run(executor.drive("acme", first))
    executor.start("acme", plan, {})


def test_a_mission_reaching_its_event_quota_is_stopped_and_ends_cancelled(tmp_path: Path) -> None:
    steps = "".join(
        f"  - {{id: s{i}, step_type: noop{f', depends_on: [s{i - 1}]' if i else ''}}}\n"
        for i in range(40)
    )
    executor = _executor(tmp_path, TenantQuotas(max_events_per_mission=20))
    mission = executor.start("acme", plan_of('version: "1.0"\nname: long\nsteps:\n' + steps), {})

    run = asyncio.run(executor.drive("acme", mission))

    events = executor.store.mission_events("acme", mission)
    assert run.outcome == "cancelled"
    assert run.cancel_reason == "it reached its quota of 20 events"
    assert sum(e.type == "StepSucceeded" for e in events) < 40
    assert verify_chain(events) is None
    assert events[-1].type == "MissionFinished"


def test_a_tenant_whose_event_stream_is_full_cannot_start_missions_others_can(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    plan = plan_of(ONE_STEP)

    async def scenario() -> tuple[str, grpc.StatusCode, str, str]:
        client = await connect(nats_server.url)
        try:
            js = client.jetstream()
            hard = StreamSettings(max_bytes=stream_hard_limit(QUOTA))
            await ensure_stream(js, "acme", hard)
            await ensure_stream(js, "globex", hard)
            for _ in range(4):  # 160 kB of a 200 kB quota: less room than a start needs
                await js.publish("rustchain.acme._.executor.Filler", b"x" * 40_000)
        finally:
            await client.close()
        settings = {"RUSTCHAIN_MAX_STREAM_BYTES": str(QUOTA)}
        async with running_services(tmp_path, ("executor",), nats_server.url, settings) as services:
            executor = executor_pb2_grpc.ExecutorServiceStub(services.channel("executor"))
            request = executor_pb2.StartMissionRequest(plan_json=plan.model_dump_json())
            started = await executor.StartMission(
                request, metadata=(("x-rustchain-tenant", "globex"),)
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await executor.StartMission(request, metadata=(("x-rustchain-tenant", "acme"),))
            nats_server.stop()
            # NATS down: the stream's state is unknown, and missions must not stop for it.
            during_outage = await executor.StartMission(
                request, metadata=(("x-rustchain-tenant", "acme"),)
            )
        return (
            started.mission_id,
            refused.value.code(),
            refused.value.details() or "",
            during_outage.mission_id,
        )

    started, code, details, during_outage = asyncio.run(scenario())
    assert started and during_outage
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "tenant 'acme''s event stream is full" in details
    assert "RUSTCHAIN_MAX_STREAM_BYTES" in details
