"""The optimiser against the graded model: it finds a planted improvement and promotes it, and
with nothing to find it promotes nothing, over many seeds."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from rustchain.bootstrap.trainer_runs import ExecutorMissionRunner, verified_plan
from rustchain.domain.policy.model import Policy
from rustchain.domain.runs.tuned_policy import POLICY_EVALUATED, POLICY_PROMOTED, POLICY_PROPOSED
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.steps.support.llm_client import MODEL_SETTING, URL_SETTING
from rustchain.trainer.optimizer import Optimiser, Outcome
from rustchain.trainer.suite_files import LoadedSuite, load_suite
from rustchain.trainer.trainer_events import TrainerEvents
from tests.integration.graded_model import GradedModel, Grading, references_of, serve_graded
from tests.paths import REPO

TRIAGE = REPO / "missions" / "suites" / "ticket-triage"
BETTER_INSTRUCTION = "exactly one word"


@pytest.fixture
def triage() -> LoadedSuite:
    return load_suite(TRIAGE)


@pytest.fixture
def graded(triage: LoadedSuite) -> Iterator[GradedModel]:
    yield from serve_graded(GradedModel(references_of(triage.suite), Grading()))


def optimise(
    home: Path, loaded: LoadedSuite, model: GradedModel, seed: int = 0, policy: Policy | None = None
) -> tuple[Outcome, TrainerEvents]:
    policy = policy or Policy()
    plan = verified_plan(loaded.mission_file, policy)
    settings = {URL_SETTING: model.url, MODEL_SETTING: "base-model"}
    store = open_event_store(EventStoreSettings("executor", home))
    events = TrainerEvents(open_event_store(EventStoreSettings("trainer", home)))
    runner = ExecutorMissionRunner(plan, "acme", policy, store, home, settings)
    optimiser = Optimiser(
        loaded.suite, plan.mission_name, "acme", runner, events, policy, settings, seed=seed
    )
    try:
        return asyncio.run(optimiser.optimise()), events
    finally:
        runner.close()


def test_a_planted_instruction_is_found_and_promoted(
    tmp_path: Path, triage: LoadedSuite, graded: GradedModel
) -> None:
    graded.grading.default_quality = 0.3
    graded.grading.models = {m: 0.3 for m in triage.suite.search.models}
    graded.grading.instruction_bonus = {BETTER_INSTRUCTION: 0.6}

    outcome, events = optimise(tmp_path, triage, graded)

    assert outcome.promoted
    assert outcome.candidate.score >= outcome.baseline.score + 0.3
    assert outcome.interval[0] > 0
    state = events.policies("acme", "ticket-triage")
    assert state.current == outcome.policy_version
    assert BETTER_INSTRUCTION in (state.versions[state.current].steps["classify"].system or "")
    kinds = [e.type for e in events.policy_events("acme")]
    assert kinds == [POLICY_PROPOSED, POLICY_EVALUATED, POLICY_PROMOTED]


def test_a_planted_better_model_is_found(
    tmp_path: Path, triage: LoadedSuite, graded: GradedModel
) -> None:
    graded.grading.default_quality = 0.2
    graded.grading.models = {"qwen2.5:0.5b": 0.2, "qwen2.5:1.5b": 0.2, "llama3.2:3b": 0.9}

    outcome, events = optimise(tmp_path, triage, graded)

    assert outcome.promoted
    promoted = events.policies("acme", "ticket-triage").promoted()
    assert promoted is not None and promoted.steps["classify"].model == "llama3.2:3b"


def test_planted_demonstrations_are_found(
    tmp_path: Path, triage: LoadedSuite, graded: GradedModel
) -> None:
    graded.grading.default_quality = 0.35
    graded.grading.models = {m: 0.35 for m in triage.suite.search.models}
    graded.grading.demonstration_bonus = 0.2

    outcome, events = optimise(tmp_path, triage, graded)

    assert outcome.promoted
    promoted = events.policies("acme", "ticket-triage").promoted()
    assert promoted is not None and len(promoted.steps["classify"].examples) == 3


@pytest.mark.parametrize("seed", range(6))
def test_with_nothing_to_find_nothing_is_promoted(
    tmp_path: Path, triage: LoadedSuite, graded: GradedModel, seed: int
) -> None:
    graded.grading.seed = seed
    graded.grading.default_quality = 0.5
    graded.grading.models = {m: 0.5 for m in triage.suite.search.models}

    outcome, events = optimise(tmp_path, triage, graded, seed=seed)

    assert not outcome.promoted
    assert events.policies("acme", "ticket-triage").current == 0
    assert POLICY_PROMOTED not in [e.type for e in events.policy_events("acme")]
