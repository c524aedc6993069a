"""Learned policies reach the llm step through `rustchain run`: recorded in StepStarted exactly
as sent, per tenant, undone by rollback, and never outside the tenant's verifier policy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from rustchain.bootstrap.trainer_runs import bounds_of, verified_plan
from rustchain.cli.app import app
from rustchain.domain.policy.model import LlmPolicy, Policy
from rustchain.domain.runs.reexecution import reexecute, run_facts
from rustchain.domain.runs.run_events import StepStarted
from rustchain.domain.runs.tuned_policy import Demonstration, StepSettings
from rustchain.generated.rustchain.executor.v1 import executor_pb2, executor_pb2_grpc
from rustchain.generated.rustchain.planner.v1 import planner_pb2, planner_pb2_grpc
from rustchain.platform.grpc.client import tenant_metadata
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.steps.support.llm_client import MODEL_SETTING, URL_SETTING
from rustchain.trainer.optimizer import PolicyRefusedError, check_allowed
from rustchain.trainer.trainer_events import TrainerEvents
from tests.integration.graded_model import GradedModel, Grading, serve_graded
from tests.integration.grpc_helpers import Services, running_services
from tests.paths import REPO

MISSION = REPO / "missions" / "suites" / "ticket-triage" / "mission.yaml"
TICKET = "I was charged twice for my subscription this month."
TUNED = StepSettings(
    model="good-model",
    temperature=0.2,
    system="Answer with one word.",
    examples=[Demonstration(prompt="Ticket: parcel lost", answer="shipping")],
)
NEWER = StepSettings(model="newer-model")


@pytest.fixture
def graded() -> Iterator[GradedModel]:
    yield from serve_graded(GradedModel({TICKET: "billing"}, Grading(default_quality=1.0)))


@pytest.fixture
def home(tmp_path: Path, graded: GradedModel, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RUSTCHAIN_HOME", str(tmp_path))
    monkeypatch.setenv(URL_SETTING, graded.url)
    monkeypatch.setenv(MODEL_SETTING, "base-model")
    return tmp_path


def events_of(home: Path) -> TrainerEvents:
    return TrainerEvents(open_event_store(EventStoreSettings("trainer", home)))


def promote(home: Path, tenant: str, settings: StepSettings) -> int:
    events = events_of(home)
    try:
        version = events.proposed(tenant, "ticket-triage", {"classify": settings}, "test")
        events.promoted(tenant, "ticket-triage", version)
    finally:
        events.store.close()
    return version


def run(tenant: str) -> Result:
    result = CliRunner().invoke(
        app, ["run", str(MISSION), "--tenant", tenant, "--var", f"ticket={TICKET}"]
    )
    assert result.exit_code == 0, result.output
    return result


def last_start(home: Path, tenant: str) -> tuple[StepStarted, bool]:
    """The llm step's start in the tenant's one mission, and whether re-execution agrees."""
    store = open_event_store(EventStoreSettings("executor", home))
    try:
        events = [n.event for n in store.notifications(0, 10_000)]
        (mission,) = {e.mission_id for e in events if e.tenant == tenant}
        facts = run_facts(store.mission_events(tenant, mission))
    finally:
        store.close()
    (started,) = [f for f in facts if isinstance(f, StepStarted)]
    return started, reexecute(facts).agrees


def all_starts(home: Path, tenant: str) -> list[StepStarted]:
    """The llm step's start in each of the tenant's missions, in the order they ran."""
    store = open_event_store(EventStoreSettings("executor", home))
    try:
        events = [n.event for n in store.notifications(0, 10_000)]
        missions = list(dict.fromkeys(e.mission_id for e in events if e.tenant == tenant))
        facts = [f for m in missions for f in run_facts(store.mission_events(tenant, m))]
    finally:
        store.close()
    return [f for f in facts if isinstance(f, StepStarted)]


def test_a_promoted_policy_changes_what_the_step_sends_and_is_recorded(
    home: Path, graded: GradedModel
) -> None:
    version = promote(home, "acme", TUNED)

    run("acme")

    sent = graded.bodies()[-1]
    assert sent["model"] == "good-model"
    assert sent["temperature"] == 0.2
    assert sent["messages"] == [
        {"role": "system", "content": "Answer with one word."},
        {"role": "user", "content": "Ticket: parcel lost"},
        {"role": "assistant", "content": "shipping"},
        {"role": "user", "content": f"Ticket: {TICKET}"},
    ]
    started, agrees = last_start(home, "acme")
    assert started.inputs is not None and started.inputs["model"] == "good-model"
    assert started.inputs["system"] == "Answer with one word."
    assert started.tuning == {"policy_version": version, "overrides": TUNED.overrides()}
    assert agrees


def test_another_tenant_is_unaffected(home: Path, graded: GradedModel) -> None:
    promote(home, "acme", TUNED)

    run("globex")

    sent = graded.bodies()[-1]
    assert sent["model"] == "base-model"
    assert sent["messages"][0] == {"role": "system", "content": "Classify the support ticket."}
    started, _ = last_start(home, "globex")
    assert started.tuning is None


def test_rollback_restores_the_mission_as_written(home: Path, graded: GradedModel) -> None:
    promote(home, "acme", TUNED)

    rolled = CliRunner().invoke(
        app, ["trainer", "rollback", "--tenant", "acme", "--mission", "ticket-triage"]
    )
    run("acme")

    assert rolled.exit_code == 0, rolled.output
    assert "the mission as written" in rolled.output
    assert graded.bodies()[-1]["model"] == "base-model"
    again = CliRunner().invoke(
        app, ["trainer", "rollback", "--tenant", "acme", "--mission", "ticket-triage"]
    )
    assert again.exit_code == 2 and "no promoted policy" in again.output


def test_rollback_returns_to_the_version_promoted_before(home: Path, graded: GradedModel) -> None:
    promote(home, "acme", TUNED)
    promote(home, "acme", TUNED.model_copy(update={"model": "newer-model"}))

    CliRunner().invoke(
        app, ["trainer", "rollback", "--tenant", "acme", "--mission", "ticket-triage"]
    )
    run("acme")

    assert graded.bodies()[-1]["model"] == "good-model"


def test_a_policy_outside_the_tenant_policy_is_refused(home: Path, graded: GradedModel) -> None:
    (home / "policies").mkdir()
    (home / "policies" / "acme.yaml").write_text("llm:\n  allowed_models: ['base-*']\n")
    tenant_policy = Policy(llm=LlmPolicy(allowed_models=["base-*"]))

    with pytest.raises(PolicyRefusedError, match="good-model"):
        check_allowed({"classify": TUNED}, tenant_policy)

    # Recorded past the trainer's own check (as if the tenant's policy tightened afterwards):
    # the executor still refuses to apply it, runs the step as written and records why.
    promote(home, "acme", TUNED)
    run("acme")

    assert graded.bodies()[-1]["model"] == "base-model"
    started, agrees = last_start(home, "acme")
    assert started.tuning is not None and "good-model" in started.tuning["refused"]
    assert started.inputs is not None and "model" not in started.inputs
    assert agrees


def test_policies_lists_versions_with_the_promoted_one_marked(home: Path) -> None:
    promote(home, "acme", TUNED)

    listed = CliRunner().invoke(app, ["trainer", "policies", "--tenant", "acme"])

    assert listed.exit_code == 0, listed.output
    assert "ticket-triage" in listed.output and "* promoted" in listed.output


def test_the_served_executor_applies_the_promoted_policy(home: Path, graded: GradedModel) -> None:
    """Through the services (`rustchain up` runs the same ones): planner, verifier, executor; a
    version promoted while they run applies to the next mission without a restart."""
    version = promote(home, "acme", TUNED)
    settings = {URL_SETTING: graded.url, MODEL_SETTING: "base-model"}

    async def submit(services: Services) -> list[executor_pb2.MissionEvent]:
        planner = planner_pb2_grpc.PlannerServiceStub(services.channel("planner"))
        request = planner_pb2.SubmitMissionRequest(
            yaml=MISSION.read_text(), file_name="mission.yaml", variables={"ticket": TICKET}
        )
        reply = await planner.SubmitMission(request, metadata=tenant_metadata("acme"))
        assert reply.accepted, [d.message for d in reply.diagnostics]
        executor = executor_pb2_grpc.ExecutorServiceStub(services.channel("executor"))
        watch = executor_pb2.WatchMissionRequest(mission_id=reply.mission_id)
        stream = executor.WatchMission(watch, metadata=tenant_metadata("acme"))
        return [event async for event in stream]

    async def scenario() -> tuple[list[executor_pb2.MissionEvent], str, str]:
        async with running_services(home, settings=settings) as services:
            first = await submit(services)
            model_first = graded.bodies()[-1]["model"]
            promote(home, "acme", NEWER)
            second = await submit(services)
            return first + second, model_first, graded.bodies()[-1]["model"]

    events, model_first, model_second = asyncio.run(scenario())

    finished = [json.loads(e.payload_json) for e in events if e.type == "MissionFinished"]
    assert [f["outcome"] for f in finished] == ["succeeded", "succeeded"]
    assert (model_first, model_second) == ("good-model", "newer-model")
    starts = all_starts(home, "acme")
    assert starts[0].tuning == {"policy_version": version, "overrides": TUNED.overrides()}
    assert starts[1].tuning == {"policy_version": version + 1, "overrides": NEWER.overrides()}


RETRYING = StepSettings(model="good-model", max_attempts=3, backoff_seconds=0)


def test_a_policys_retry_settings_retry_the_step_and_are_recorded(
    home: Path, graded: GradedModel
) -> None:
    """The mission retries nothing as written; the policy's attempts outlast two failures."""
    version = promote(home, "acme", RETRYING)
    graded.failures = 2

    run("acme")

    starts = all_starts(home, "acme")
    assert [s.attempt for s in starts] == [1, 2, 3]
    for started in starts:
        assert started.tuning == {
            "policy_version": version,
            "overrides": {"model": "good-model"},
            "retry": {"max_attempts": 3, "backoff_seconds": 0.0},
        }
        assert started.inputs is not None and "max_attempts" not in started.inputs
    _, agrees = last_start_of(home, "acme")
    assert agrees


def test_without_the_policy_the_mission_as_written_tries_once(
    home: Path, graded: GradedModel
) -> None:
    graded.failures = 2

    result = CliRunner().invoke(
        app, ["run", str(MISSION), "--tenant", "acme", "--var", f"ticket={TICKET}"]
    )

    assert result.exit_code == 1, result.output
    assert [s.attempt for s in all_starts(home, "acme")] == [1]


def test_attempts_past_the_tenants_time_limit_are_refused(home: Path, graded: GradedModel) -> None:
    """The step may take 120 s an attempt; the tenant's missions may take 300 s: 3 attempts
    (362 s) are refused at promotion and at run time, 2 (241 s) are not."""
    (home / "policies").mkdir()
    (home / "policies" / "acme.yaml").write_text("limits:\n  max_mission_seconds: 300\n")
    tenant_policy = Policy.model_validate({"limits": {"max_mission_seconds": 300}})
    plan = verified_plan(MISSION, tenant_policy)
    bounds = bounds_of(plan)

    with pytest.raises(PolicyRefusedError, match=r"mission\.time"):
        check_allowed(
            {"classify": RETRYING.model_copy(update={"backoff_seconds": 1.0})},
            tenant_policy,
            bounds,
        )
    check_allowed(
        {"classify": RETRYING.model_copy(update={"max_attempts": 2})}, tenant_policy, bounds
    )

    promote(home, "acme", RETRYING)
    graded.failures = 1
    result = CliRunner().invoke(
        app, ["run", str(MISSION), "--tenant", "acme", "--var", f"ticket={TICKET}"]
    )

    assert result.exit_code == 1, result.output
    (started,) = all_starts(home, "acme")
    assert started.tuning is not None and "[mission.time]" in started.tuning["refused"]


def last_start_of(home: Path, tenant: str) -> tuple[StepStarted, bool]:
    """The last llm step start of the tenant's one mission, and whether re-execution agrees."""
    store = open_event_store(EventStoreSettings("executor", home))
    try:
        events = [n.event for n in store.notifications(0, 10_000)]
        (mission,) = {e.mission_id for e in events if e.tenant == tenant}
        facts = run_facts(store.mission_events(tenant, mission))
    finally:
        store.close()
    starts = [f for f in facts if isinstance(f, StepStarted)]
    return starts[-1], reexecute(facts).agrees
