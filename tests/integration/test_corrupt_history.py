"""A stored event that cannot be read as its fact reaches a caller as DATA_LOSS, never as the
caller's fault (INVALID_ARGUMENT); and the store adapter hands readers upcast, typed facts."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from click.testing import CliRunner

from rustchain.cli import exit_codes
from rustchain.cli.app import app
from rustchain.domain.events.envelope import EventDraft
from rustchain.domain.events.verification_events import VERIFICATION_FACTS
from rustchain.domain.plans.compiler import compile_mission
from rustchain.domain.runs.run_events import RUN_FACTS, StepStarted
from rustchain.generated.rustchain.executor.v1 import executor_pb2, executor_pb2_grpc
from rustchain.generated.rustchain.verifier.v1 import verifier_pb2, verifier_pb2_grpc
from rustchain.platform.grpc.client import tenant_metadata
from rustchain.platform.storage.event_store import (
    EventStoreSettings,
    facts_after,
    mission_facts,
    open_event_store,
)
from rustchain.steps import default_registry
from tests.integration.grpc_helpers import running_services
from tests.paths import REPO

HELLO = (REPO / "missions" / "hello.yaml").read_text()
NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def _plan_json() -> str:
    compilation = compile_mission(HELLO.encode(), "hello.yaml", default_registry())
    assert compilation.plan is not None
    return compilation.plan.to_json()


def _draft(
    service: str, mission: str, n: int, kind: str, payload: dict[str, Any], version: int = 1
) -> EventDraft:
    return EventDraft(
        id=str(uuid.uuid4()),
        tenant="acme",
        mission_id=mission,
        service=service,
        aggregate_id=mission,
        aggregate_version=n,
        type=kind,
        version=version,
        occurred_at=NOW,
        payload=payload,
    )


def _store_directly(home: Path, name: str, drafts: list[EventDraft]) -> None:
    """Appended as a broken or older writer would have: the store does not read payloads."""
    store = open_event_store(EventStoreSettings(name, home))
    try:
        store.append(drafts)
    finally:
        store.close()


def _started(plan_json: str, mission: str) -> EventDraft:
    plan = json.loads(plan_json)
    payload = {"plan": plan, "plan_hash": "h" * 64, "variables": {}, "workspace": "/w"}
    return _draft("executor", mission, 1, "MissionStarted", payload)


def test_corrupt_stored_facts_are_data_loss_and_the_services_keep_serving(
    tmp_path: Path,
) -> None:
    plan_json = _plan_json()
    _store_directly(
        tmp_path, "verifier", [_draft("verifier", "m-bad", 1, "PlanVerified", {"status": "safe"})]
    )
    _store_directly(
        tmp_path,
        "executor",
        [
            _started(plan_json, "m-newer"),
            _draft("executor", "m-newer", 2, "StepStarted", {"step_id": "x"}, version=9),
        ],
    )
    acme = tenant_metadata("acme")

    async def scenario() -> None:
        async with running_services(tmp_path, ("verifier", "executor")) as services:
            verifier = verifier_pb2_grpc.VerifierServiceStub(services.channel("verifier"))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await verifier.VerifyPlan(
                    verifier_pb2.VerifyPlanRequest(plan_json=plan_json, mission_id="m-bad"),
                    metadata=acme,
                )
            assert caught.value.code() is grpc.StatusCode.DATA_LOSS
            assert "does not hold a PlanVerified" in (caught.value.details() or "")
            good = await verifier.VerifyPlan(
                verifier_pb2.VerifyPlanRequest(plan_json=plan_json, mission_id="m-good"),
                metadata=acme,
            )
            assert good.safe

            executor = executor_pb2_grpc.ExecutorServiceStub(services.channel("executor"))
            request = executor_pb2.GetMissionRequest(mission_id="m-newer")
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await executor.GetMission(request, metadata=acme)
            assert caught.value.code() is grpc.StatusCode.DATA_LOSS
            assert "StepStarted v9, newer than this code knows" in (caught.value.details() or "")
            watch = executor.WatchMission(
                executor_pb2.WatchMissionRequest(mission_id="m-newer"), metadata=acme
            )
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                _ = [event async for event in watch]
            assert caught.value.code() is grpc.StatusCode.DATA_LOSS
            listed = await executor.ListMissions(executor_pb2.ListMissionsRequest(), metadata=acme)
            assert [(m.mission_id, m.status) for m in listed.missions] == [
                ("m-newer", "unreadable")
            ]

    asyncio.run(scenario())


def test_a_plan_that_is_not_one_or_disagrees_with_itself_is_the_callers_fault(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with running_services(tmp_path, ("verifier",)) as services:
            verifier = verifier_pb2_grpc.VerifierServiceStub(services.channel("verifier"))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await verifier.VerifyPlan(
                    verifier_pb2.VerifyPlanRequest(plan_json='{"steps": 3}', mission_id="m1"),
                    metadata=tenant_metadata("acme"),
                )
            assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "plan_json is not a plan" in (caught.value.details() or "")
            ghost = json.loads(_plan_json()) | {"levels": [["ghost"]]}
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await verifier.VerifyPlan(
                    verifier_pb2.VerifyPlanRequest(plan_json=json.dumps(ghost), mission_id="m1"),
                    metadata=tenant_metadata("acme"),
                )
            assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "levels do not list each of its steps once" in (caught.value.details() or "")

    asyncio.run(scenario())


def test_the_store_adapter_reads_older_facts_upcast_and_typed(tmp_path: Path) -> None:
    plan_json = _plan_json()
    v1_step = _draft("executor", "m1", 2, "StepStarted", {"step_id": "say_it", "attempt": 1})
    _store_directly(tmp_path, "executor", [_started(plan_json, "m1"), v1_step])
    store = open_event_store(EventStoreSettings("executor", tmp_path))
    try:
        facts = mission_facts(store, "acme", "m1", RUN_FACTS)
        logged = [recorded for _, recorded in facts_after(store, 0, RUN_FACTS)]
        verdicts = mission_facts(store, "acme", "m1", VERIFICATION_FACTS)
    finally:
        store.close()

    step = facts[1]
    assert step.stored.version == 1 and step.version == 2
    assert isinstance(step.fact, StepStarted) and not step.fact.inputs_recorded
    assert [r.fact for r in logged] == [r.fact for r in facts]
    assert verdicts == []


@pytest.mark.parametrize("verb", ["replay", "reexecute"])
def test_the_auditors_commands_name_a_fact_that_cannot_be_read(tmp_path: Path, verb: str) -> None:
    _store_directly(
        tmp_path,
        "executor",
        [
            _started(_plan_json(), "m1"),
            _draft("executor", "m1", 2, "StepStarted", {"step_id": "say_it"}),
        ],
    )

    result = CliRunner().invoke(
        app, ["audit", verb, "m1", "--tenant", "acme"], env={"RUSTCHAIN_HOME": str(tmp_path)}
    )

    assert result.exit_code == exit_codes.MISSION_AT_FAULT, result.output
    assert "mission 'm1': a recorded fact cannot be read" in result.output
    assert "does not hold a StepStarted: attempt: Field required" in result.output
    assert "Traceback" not in result.output
