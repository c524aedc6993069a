"""The trainer's learning over gRPC: Optimize streams progress and ends with both held-out
scores, ListPolicies shows the evidence, RollbackPolicy undoes, ExportTrajectories exports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from rustchain.bootstrap.trainer_runs import deployment_optimiser, open_trainer_events
from rustchain.generated.rustchain.trainer.v1 import trainer_pb2, trainer_pb2_grpc
from rustchain.platform.grpc.client import open_channel
from rustchain.platform.grpc.server import start_server
from rustchain.steps.support.llm_client import MODEL_SETTING, URL_SETTING
from rustchain.trainer.servicer import TrainerServicer, binding
from rustchain.trainer.suite_files import load_suite
from rustchain.trainer.trajectory_store import SqliteTrajectoryStore
from tests.integration.graded_model import GradedModel, Grading, references_of, serve_graded
from tests.paths import REPO

TRIAGE = REPO / "missions" / "suites" / "ticket-triage"
ACME = (("x-rustchain-tenant", "acme"),)


@pytest.fixture
def graded() -> Iterator[GradedModel]:
    grading = Grading(default_quality=0.3, instruction_bonus={"exactly one word": 0.7})
    yield from serve_graded(GradedModel(references_of(load_suite(TRIAGE).suite), grading))


def test_optimize_list_rollback_and_export_over_grpc(tmp_path: Path, graded: GradedModel) -> None:
    environ = {"RUSTCHAIN_HOME": str(tmp_path), URL_SETTING: graded.url, MODEL_SETTING: "base"}
    suite_yaml = (TRIAGE / "suite.yaml").read_text()
    mission_yaml = (TRIAGE / "mission.yaml").read_text()

    async def scenario() -> None:
        store = SqliteTrajectoryStore(tmp_path / "trainer.sqlite3")
        events = open_trainer_events(environ)
        servicer = TrainerServicer(store, events, deployment_optimiser(environ, events, store))
        running = await start_server([binding(servicer)])
        try:
            async with open_channel(f"127.0.0.1:{running.port}") as channel:
                trainer = trainer_pb2_grpc.TrainerServiceStub(channel)
                request = trainer_pb2.OptimizeRequest(
                    suite_yaml=suite_yaml, mission_yaml=mission_yaml, seed=1
                )
                updates = [u async for u in trainer.Optimize(request, metadata=ACME)]
                progress = [u.progress for u in updates if u.progress]
                result = updates[-1].result
                assert any("held-out" in line for line in progress)
                assert result.promoted and result.policy_version == 1
                assert result.candidate.score > result.baseline.score
                assert result.candidate.total == result.baseline.total > 0

                listed = await trainer.ListPolicies(
                    trainer_pb2.ListPoliciesRequest(), metadata=ACME
                )
                (version,) = listed.versions
                assert version.promoted and version.interval_low > 0
                assert "exactly one word" in json.loads(version.settings_json)["classify"]["system"]

                back = await trainer.RollbackPolicy(
                    trainer_pb2.RollbackPolicyRequest(mission="ticket-triage"), metadata=ACME
                )
                assert back.version == 0
                with pytest.raises(grpc.aio.AioRpcError) as again:
                    await trainer.RollbackPolicy(
                        trainer_pb2.RollbackPolicyRequest(mission="ticket-triage"), metadata=ACME
                    )
                assert again.value.code() is grpc.StatusCode.NOT_FOUND

                export = trainer_pb2.ExportTrajectoriesRequest(format="openai-sft", min_reward=1)
                records = [
                    json.loads(r.json)
                    async for r in trainer.ExportTrajectories(export, metadata=ACME)
                ]
                assert records and all(r["messages"][-1]["role"] == "assistant" for r in records)
        finally:
            await running.stop()
            events.store.close()
            store.close()

    asyncio.run(scenario())
