"""The trainer (issue 16): held-out score before and after optimising each shipped suite against
the graded test model (tests/integration/graded_model.py, a real OpenAI-compatible server whose
answers get better with a better model, the suite's precise instruction and demonstrations);
optimiser wall time and missions run per point of improvement; judge throughput, rule and LLM.

The baseline for each figure is the mission as written (no learned policy) on the same held-out
scenarios, with the same number of runs."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from tests.integration.graded_model import GradedModel, Grading, references_of, serve_graded

from rustchain.bootstrap.trainer_runs import ExecutorMissionRunner, verified_plan
from rustchain.domain.policy.model import Policy
from rustchain.domain.runs.tuned_policy import StepSettings
from rustchain.domain.training.rule_judge import judge_by_rules
from rustchain.domain.training.suite import Suite
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.steps.support.llm_client import MODEL_SETTING, URL_SETTING
from rustchain.trainer.llm_judge import judge_group
from rustchain.trainer.optimizer import Optimiser, Outcome
from rustchain.trainer.promoted_policies import PromotedPolicies
from rustchain.trainer.suite_files import LoadedSuite, load_suite
from rustchain.trainer.trainer_events import TrainerEvents

SUITES = Path(__file__).resolve().parents[1] / "missions" / "suites"
NAMES = ("ticket-triage", "invoice-extraction", "code-review")
JUDGE_ROUNDS = 20
POLICY_VERSIONS = 100
LOOKUPS = 200


def _grading(suite: Suite) -> Grading:
    """A weak default model, a better one in the search space, a bonus for the suite's precise
    instruction and for demonstrations: improvements to find, as a real model would offer."""
    better = suite.search.instructions[-1][:40]
    models = {model: 0.25 for model in suite.search.models}
    models[suite.search.models[-1]] = 0.45
    return Grading(
        models=models,
        default_quality=0.25,
        instruction_bonus={better: 0.35},
        demonstration_bonus=0.05,
    )


def _optimise(home: Path, loaded: LoadedSuite, model: GradedModel) -> tuple[Outcome, float]:
    policy = Policy()
    plan = verified_plan(loaded.mission_file, policy)
    settings = {URL_SETTING: model.url, MODEL_SETTING: "base-model"}
    store = open_event_store(EventStoreSettings("executor", home))
    events = TrainerEvents(open_event_store(EventStoreSettings("trainer", home)))
    runner = ExecutorMissionRunner(plan, "bench", policy, store, home, settings)
    optimiser = Optimiser(
        loaded.suite, plan.mission_name, "bench", runner, events, policy, settings
    )
    started = time.perf_counter()
    try:
        outcome = asyncio.run(optimiser.optimise())
    finally:
        runner.close()
        store.close()
        events.store.close()
    return outcome, time.perf_counter() - started


def _judges(loaded: LoadedSuite, outcome: Outcome, model: GradedModel) -> tuple[float, float]:
    """Trajectories judged per second by the rule judge and by the RULER judge (groups of the
    held-out runs, one call per scenario)."""
    scenarios = {s.id: s for s in loaded.suite.scenarios}
    runs = outcome.runs
    started = time.perf_counter()
    for _ in range(JUDGE_ROUNDS):
        for run in runs:
            judge_by_rules(run.trajectory, scenarios[run.scenario], loaded.suite.judge)
    rule_rate = JUDGE_ROUNDS * len(runs) / (time.perf_counter() - started)
    groups = sorted({run.scenario for run in runs})
    settings = loaded.suite.judge.model_copy(update={"model": "judge-model"})

    async def judge_all() -> None:
        for scenario_id in groups:
            members = [r for r in runs if r.scenario == scenario_id]
            await judge_group(
                scenarios[scenario_id],
                [r.trajectory for r in members],
                [r.rule for r in members],
                settings,
                {URL_SETTING: model.url},
                "bench",
                None,
            )

    started = time.perf_counter()
    asyncio.run(judge_all())
    llm_rate = len(runs) / (time.perf_counter() - started)
    return rule_rate, llm_rate


def _policy_lookups() -> tuple[float, float]:
    """Milliseconds per llm step to find its promoted policy with POLICY_VERSIONS promoted
    versions in the trainer's store: reading and folding the tenant's policy events each time
    (the baseline, `TrainerEvents.step_policy`) and kept current from the log's tail
    (`PromotedPolicies`, what executors use)."""
    with tempfile.TemporaryDirectory() as folder:
        events = TrainerEvents(open_event_store(EventStoreSettings("trainer", Path(folder))))
        for number in range(POLICY_VERSIONS):
            steps = {"classify": StepSettings(model=f"model-{number}")}
            version = events.proposed("bench", "ticket-triage", steps, "bench")
            events.promoted("bench", "ticket-triage", version)
        kept = PromotedPolicies(events.store)
        figures = []
        for lookup in (events.step_policy, kept.step_policy):
            lookup("bench", "m", "ticket-triage", "classify")
            started = time.perf_counter()
            for _ in range(LOOKUPS):
                lookup("bench", "m", "ticket-triage", "classify")
            figures.append((time.perf_counter() - started) / LOOKUPS * 1e3)
        events.store.close()
    return figures[0], figures[1]


def main() -> None:
    """Print each suite's held-out scores before and after, and the costs of getting there."""
    print(
        f"{'suite':<20}{'before':>8}{'after':>8}{'promoted':>10}{'seconds':>9}"
        f"{'missions':>10}{'missions/pt':>13}{'rule traj/s':>13}{'llm traj/s':>12}"
    )
    for name in NAMES:
        loaded = load_suite(SUITES / name)
        model = GradedModel(references_of(loaded.suite), _grading(loaded.suite))
        for served in serve_graded(model):
            with tempfile.TemporaryDirectory() as folder:
                outcome, seconds = _optimise(Path(folder), loaded, served)
            rule_rate, llm_rate = _judges(loaded, outcome, served)
        gain_points = 100 * (outcome.candidate.score - outcome.baseline.score)
        per_point = outcome.missions_run / gain_points if gain_points > 0 else float("inf")
        print(
            f"{name:<20}{outcome.baseline.score:>8.3f}{outcome.candidate.score:>8.3f}"
            f"{outcome.promoted!s:>10}{seconds:>9.1f}{outcome.missions_run:>10}"
            f"{per_point:>13.1f}{rule_rate:>13.0f}{llm_rate:>12.0f}"
        )
    print("(score: mean reward on held-out scenarios in [0, 1]; a point is 0.01 of it)")
    folded, kept = _policy_lookups()
    print(
        f"policy lookup per llm step, {POLICY_VERSIONS} promoted versions: read and fold every"
        f" time {folded:.2f} ms, kept current from the log's tail {kept:.3f} ms"
    )
