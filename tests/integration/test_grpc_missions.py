"""Missions submitted to the planner over gRPC, verified, run by the executor and watched."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import grpc
import pytest

from rustchain.bootstrap.executor import build_executor
from rustchain.domain.plans.compiler import compile_mission
from rustchain.generated.rustchain.executor.v1 import executor_pb2, executor_pb2_grpc
from rustchain.generated.rustchain.planner.v1 import planner_pb2, planner_pb2_grpc
from rustchain.platform.grpc.client import tenant_metadata
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.steps import default_registry
from tests.integration.grpc_helpers import Services, running_services
from tests.paths import REPO
from tests.unit.compile_helpers import plan_of

HELLO = (REPO / "missions" / "hello.yaml").read_text()
WATCH_TIMEOUT_SECONDS = 30.0
RAG = """
version: "1.0"
name: remember
steps:
  - id: keep
    name: Keep a note
    step_type: rag_add
    parameters: {collection: notes, content: "the kettle is in the attic"}
  - id: find
    name: Find it again
    step_type: rag_query
    depends_on: [keep]
    parameters: {collection: notes, query: kettle}
"""


async def _submit(
    services: Services, text: str, tenant: str = "default", **variables: str
) -> planner_pb2.SubmitMissionResponse:
    planner = planner_pb2_grpc.PlannerServiceStub(services.channel("planner"))
    request = planner_pb2.SubmitMissionRequest(
        yaml=text, file_name="mission.yaml", variables=variables
    )
    return await planner.SubmitMission(request, metadata=tenant_metadata(tenant))


async def _watch(
    services: Services, mission_id: str, tenant: str = "default"
) -> list[executor_pb2.MissionEvent]:
    executor = executor_pb2_grpc.ExecutorServiceStub(services.channel("executor"))
    stream = executor.WatchMission(
        executor_pb2.WatchMissionRequest(mission_id=mission_id), metadata=tenant_metadata(tenant)
    )

    async def collect() -> list[executor_pb2.MissionEvent]:
        return [event async for event in stream]

    return await asyncio.wait_for(collect(), WATCH_TIMEOUT_SECONDS)


def test_submitted_hello_mission_runs_and_is_watched_to_success(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_services(tmp_path) as services:
            reply = await _submit(services, HELLO, who="Ada")
            assert reply.accepted, [d.message for d in reply.diagnostics]
            assert reply.verdict_status == "safe"
            events = await _watch(services, reply.mission_id)
            types = [e.type for e in events]
            assert types[0] == "MissionStarted"
            assert types[-1] == "MissionFinished"
            assert json.loads(events[-1].payload_json)["outcome"] == "succeeded"
            assert [e.version for e in events] == list(range(1, len(events) + 1))
            done = {e.step_id for e in events if e.type == "StepSucceeded"}
            assert done == {"write_greeting", "read_greeting", "say_it"}

            executor = executor_pb2_grpc.ExecutorServiceStub(services.channel("executor"))
            summary = await executor.GetMission(
                executor_pb2.GetMissionRequest(mission_id=reply.mission_id)
            )
            assert summary.status == "succeeded"
            assert "Hello, Ada!" in (Path(summary.workspace) / "hello.txt").read_text()
            listed = await executor.ListMissions(executor_pb2.ListMissionsRequest())
            assert [(m.mission_id, m.status) for m in listed.missions] == [
                (reply.mission_id, "succeeded")
            ]
            # Another tenant sees none of it.
            other = await executor.ListMissions(
                executor_pb2.ListMissionsRequest(), metadata=tenant_metadata("other")
            )
            assert list(other.missions) == []
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await executor.GetMission(
                    executor_pb2.GetMissionRequest(mission_id=reply.mission_id),
                    metadata=tenant_metadata("other"),
                )
            assert caught.value.code() is grpc.StatusCode.NOT_FOUND

    asyncio.run(scenario())
    verifier_store = open_event_store(EventStoreSettings("verifier", tmp_path))
    try:
        missions = {n.event.mission_id for n in verifier_store.notifications(0, 100)}
        types = {n.event.type for n in verifier_store.notifications(0, 100)}
    finally:
        verifier_store.close()
    assert types == {"PlanVerified"}
    assert len(missions) == 1


def test_rag_steps_use_the_memory_service_of_the_missions_tenant(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_services(tmp_path) as services:
            reply = await _submit(services, RAG, tenant="acme")
            assert reply.accepted, [d.message for d in reply.diagnostics]
            events = await _watch(services, reply.mission_id, tenant="acme")
            assert json.loads(events[-1].payload_json)["outcome"] == "succeeded"
            found = next(e for e in events if e.type == "StepSucceeded" and e.step_id == "find")
            assert "kettle" in found.payload_json

    asyncio.run(scenario())


def test_invalid_mission_is_refused_with_positions_and_nothing_starts(tmp_path: Path) -> None:
    broken = HELLO.replace("step_type: read_file", "step_type: read_fiel")

    async def scenario() -> None:
        async with running_services(tmp_path) as services:
            reply = await _submit(services, broken)
            assert not reply.accepted
            assert reply.mission_id == ""
            (error,) = [d for d in reply.diagnostics if d.severity == "error"]
            assert (error.file, error.line) == ("mission.yaml", 23)
            assert error.column > 0
            assert "read_file" in error.message
            executor = executor_pb2_grpc.ExecutorServiceStub(services.channel("executor"))
            listed = await executor.ListMissions(executor_pb2.ListMissionsRequest())
            assert list(listed.missions) == []

    asyncio.run(scenario())


def test_variables_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_services(tmp_path, ("verifier", "executor", "planner")) as services:
            reply = await _submit(services, HELLO, who="R2-D2", colour="red")
            assert not reply.accepted
            messages = sorted(d.message for d in reply.diagnostics)
            assert len(messages) == 2
            assert "no variable 'colour'" in messages[0]
            assert "must match" in messages[1]

    asyncio.run(scenario())


def test_mission_the_verifier_refuses_is_not_started(tmp_path: Path) -> None:
    unsafe = HELLO.replace(
        "path: hello.txt\n      content", "path: ../../escape.txt\n      content"
    )

    async def scenario() -> None:
        async with running_services(tmp_path, ("verifier", "executor", "planner")) as services:
            reply = await _submit(services, unsafe)
            assert not reply.accepted
            assert reply.verdict_status == "violation"
            (finding,) = reply.diagnostics
            assert finding.rule == "filesystem.workspace"
            assert finding.line > 0
            executor = executor_pb2_grpc.ExecutorServiceStub(services.channel("executor"))
            listed = await executor.ListMissions(executor_pb2.ListMissionsRequest())
            assert list(listed.missions) == []

    asyncio.run(scenario())
    assert not (tmp_path / "escape.txt").exists()


def test_executor_resumes_unfinished_missions_when_it_starts(tmp_path: Path) -> None:
    store = open_event_store(EventStoreSettings("executor", tmp_path))
    try:
        compiled = compile_mission(HELLO.encode(), "hello.yaml", default_registry())
        assert compiled.plan is not None
        application = build_executor({"RUSTCHAIN_HOME": str(tmp_path)}, store)
        mission_id = application.start("default", compiled.plan, {"who": "Grace"})
    finally:
        store.close()

    async def scenario() -> None:
        async with running_services(tmp_path, ("executor",)) as services:
            events = await _watch(services, mission_id)
            assert json.loads(events[-1].payload_json)["outcome"] == "succeeded"
            assert sum(e.type == "MissionStarted" for e in events) == 1

    asyncio.run(scenario())
    workspace = tmp_path / "workspaces" / "default" / mission_id
    assert (workspace / "hello.txt").read_text().startswith("Hello, Grace!")


def test_cancelling_a_finished_or_unknown_mission(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_services(tmp_path) as services:
            reply = await _submit(services, HELLO)
            await _watch(services, reply.mission_id)
            executor = executor_pb2_grpc.ExecutorServiceStub(services.channel("executor"))
            done = await executor.CancelMission(
                executor_pb2.CancelMissionRequest(mission_id=reply.mission_id)
            )
            assert not done.cancelled
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await executor.CancelMission(executor_pb2.CancelMissionRequest(mission_id="nope"))
            assert caught.value.code() is grpc.StatusCode.NOT_FOUND

    asyncio.run(scenario())


RETRYING = """
version: "1.0"
name: retrying
steps:
  - id: wait_for_it
    name: Read a file that never comes
    step_type: read_file
    retry: {max_attempts: 20, backoff_seconds: 0.5}
    parameters: {path: never.txt}
  - id: after
    name: Never reached
    step_type: noop
    depends_on: [wait_for_it]
    parameters: {message: done}
"""


def test_cancelled_mission_starts_nothing_new_and_ends_cancelled(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_services(tmp_path) as services:
            reply = await _submit(services, RETRYING)
            assert reply.accepted, [d.message for d in reply.diagnostics]
            executor = executor_pb2_grpc.ExecutorServiceStub(services.channel("executor"))
            stream = executor.WatchMission(
                executor_pb2.WatchMissionRequest(mission_id=reply.mission_id)
            )
            events: list[executor_pb2.MissionEvent] = []

            async def follow() -> None:
                async for event in stream:
                    events.append(event)
                    if event.type == "StepFailed" and len(events) < 4:
                        cancel = executor_pb2.CancelMissionRequest(
                            mission_id=reply.mission_id, reason="changed my mind"
                        )
                        assert (await executor.CancelMission(cancel)).cancelled

            await asyncio.wait_for(follow(), WATCH_TIMEOUT_SECONDS)
            finished = json.loads(events[-1].payload_json)
            assert events[-1].type == "MissionFinished"
            assert finished["outcome"] == "cancelled"
            assert "MissionCancelRequested" in [e.type for e in events]
            assert sum(e.type == "StepStarted" for e in events) < 20
            summary = await executor.GetMission(
                executor_pb2.GetMissionRequest(mission_id=reply.mission_id)
            )
            assert summary.status == "cancelled"
            assert {s.id: s.status for s in summary.steps}["after"] == "skipped"

    asyncio.run(scenario())


def test_validate_mission_returns_the_plan_and_starts_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_services(tmp_path, ("verifier", "executor", "planner")) as services:
            planner = planner_pb2_grpc.PlannerServiceStub(services.channel("planner"))
            valid = await planner.ValidateMission(
                planner_pb2.ValidateMissionRequest(yaml=HELLO, variables={"who": "Ada"})
            )
            assert valid.valid
            plan = json.loads(valid.plan_json)
            assert plan["hash"] == valid.plan_hash
            assert [s["id"] for s in plan["steps"]] == ["write_greeting", "read_greeting", "say_it"]
            invalid = await planner.ValidateMission(
                planner_pb2.ValidateMissionRequest(yaml=HELLO, variables={"who": "R2-D2"})
            )
            assert not invalid.valid
            assert invalid.plan_json == ""
            executor = executor_pb2_grpc.ExecutorServiceStub(services.channel("executor"))
            listed = await executor.ListMissions(executor_pb2.ListMissionsRequest())
            assert list(listed.missions) == []
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await _watch(services, "no-such-mission")
            assert caught.value.code() is grpc.StatusCode.NOT_FOUND

    asyncio.run(scenario())


def test_list_missions_pages_through_a_tenants_missions_oldest_first(tmp_path: Path) -> None:
    plan = plan_of('version: "1.0"\nname: one\nsteps:\n  - {id: a, step_type: noop}\n')

    async def scenario() -> tuple[list[str], list[str], grpc.StatusCode]:
        async with running_services(tmp_path, ("executor",)) as services:
            executor = executor_pb2_grpc.ExecutorServiceStub(services.channel("executor"))
            request = executor_pb2.StartMissionRequest(plan_json=plan.model_dump_json())
            started = [(await executor.StartMission(request)).mission_id for _ in range(5)]
            listed: list[str] = []
            token = ""
            while True:
                page = await executor.ListMissions(
                    executor_pb2.ListMissionsRequest(page_size=2, page_token=token)
                )
                assert len(page.missions) <= 2
                listed += [m.mission_id for m in page.missions]
                token = page.next_page_token
                if not token:
                    break
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await executor.ListMissions(executor_pb2.ListMissionsRequest(page_token="x"))
        return started, listed, refused.value.code()

    started, listed, code = asyncio.run(scenario())
    assert listed == started
    assert code is grpc.StatusCode.INVALID_ARGUMENT


WORKSPACE_MISSION = 'version: "1.0"\nname: ws\nCONFIG\nsteps:\n  - {id: a, step_type: noop}\n'


def test_a_workspace_is_taken_only_for_a_mission_that_names_one_its_policy_allows(
    tmp_path: Path,
) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "acme.yaml").write_text(
        "name: repo\ndescription: may work in its repository\n"
        'filesystem:\n  mission_workspaces: [".."]\n'
    )
    folder = tmp_path / "repository"
    named = plan_of(WORKSPACE_MISSION.replace("CONFIG", 'config: {workspace: ".."}'))
    unnamed = plan_of(WORKSPACE_MISSION.replace("CONFIG", ""))

    async def start(plan: Any, tenant: str) -> tuple[grpc.StatusCode, str]:
        async with running_services(tmp_path, ("executor",)) as services:
            executor = executor_pb2_grpc.ExecutorServiceStub(services.channel("executor"))
            request = executor_pb2.StartMissionRequest(
                plan_json=plan.model_dump_json(), workspace=str(folder)
            )
            try:
                await executor.StartMission(request, metadata=tenant_metadata(tenant))
            except grpc.aio.AioRpcError as refused:
                return refused.code(), refused.details() or ""
            return grpc.StatusCode.OK, ""

    assert asyncio.run(start(named, "acme")) == (grpc.StatusCode.OK, "")
    code, details = asyncio.run(start(unnamed, "acme"))
    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert "a workspace was given for a mission that names none" in details
    # Another tenant, under the default policy: no mission may name its workspace.
    code, details = asyncio.run(start(named, "globex"))
    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert "does not allow the workspace '..'" in details


def test_a_named_workspace_must_resolve_under_the_policys_workspace_roots(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "acme.yaml").write_text(
        "name: repos\ndescription: may work in its repositories\nfilesystem:\n"
        f'  mission_workspaces: [".."]\n  workspace_roots: ["{tmp_path}/repos/*"]\n'
    )
    inside, outside = tmp_path / "repos" / "app", tmp_path / "elsewhere"
    inside.mkdir(parents=True)
    outside.mkdir()
    # A link inside the roots to a folder outside them: the folder it resolves to is what counts.
    (tmp_path / "repos" / "sneaky").symlink_to(outside)
    plan = plan_of(WORKSPACE_MISSION.replace("CONFIG", 'config: {workspace: ".."}'))

    async def start(folder: Path) -> tuple[grpc.StatusCode, str]:
        async with running_services(tmp_path, ("executor",)) as services:
            executor = executor_pb2_grpc.ExecutorServiceStub(services.channel("executor"))
            request = executor_pb2.StartMissionRequest(
                plan_json=plan.model_dump_json(), workspace=str(folder)
            )
            try:
                await executor.StartMission(request, metadata=tenant_metadata("acme"))
            except grpc.aio.AioRpcError as refused:
                return refused.code(), refused.details() or ""
            return grpc.StatusCode.OK, ""

    assert asyncio.run(start(inside)) == (grpc.StatusCode.OK, "")
    for folder in (outside, tmp_path / "repos" / "sneaky"):
        code, details = asyncio.run(start(folder))
        assert code is grpc.StatusCode.PERMISSION_DENIED, folder
        assert f"resolves to {outside}, outside the folders" in details


def test_a_mission_id_names_one_run_and_a_second_start_leaves_the_first_intact(
    tmp_path: Path,
) -> None:
    plan = plan_of('version: "1.0"\nname: one\nsteps:\n  - {id: a, step_type: noop}\n')

    async def scenario() -> tuple[grpc.StatusCode, str, str]:
        async with running_services(tmp_path, ("executor",)) as services:
            executor = executor_pb2_grpc.ExecutorServiceStub(services.channel("executor"))
            request = executor_pb2.StartMissionRequest(
                plan_json=plan.model_dump_json(), mission_id="once"
            )
            await executor.StartMission(request)
            async for _ in executor.WatchMission(
                executor_pb2.WatchMissionRequest(mission_id="once")
            ):
                pass  # until it finished
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await executor.StartMission(request)
            summary = await executor.GetMission(executor_pb2.GetMissionRequest(mission_id="once"))
        return refused.value.code(), refused.value.details() or "", summary.status

    code, details, status = asyncio.run(scenario())
    assert code is grpc.StatusCode.ALREADY_EXISTS
    assert "mission 'once' of tenant 'default' exists already" in details
    assert status == "succeeded"
    store = open_event_store(EventStoreSettings("executor", tmp_path))
    try:
        types = [e.type for e in store.mission_events("default", "once")]
    finally:
        store.close()
    assert types.count("MissionStarted") == 1 and types[-1] == "MissionFinished"
