"""Suites load with placed errors and a stable split; the rule judge scores what it should."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rustchain.domain.runs.trajectory import Trajectory, TrajectoryStep
from rustchain.domain.training.paired_bootstrap import paired_interval, should_promote
from rustchain.domain.training.rule_judge import check_expectation, judge_by_rules
from rustchain.domain.training.suite import Expectation, JudgeSettings, JudgeWeights, Scenario
from rustchain.trainer.suite_files import SuiteFileError, load_suite
from tests.paths import REPO

SUITES = REPO / "missions" / "suites"
START = datetime(2026, 1, 1, tzinfo=UTC)


def trajectory(
    outputs: dict[str, Any], outcome: str = "succeeded", attempts: int = 1
) -> Trajectory:
    step = TrajectoryStep(
        step_id="classify",
        step_type="llm",
        status="succeeded" if outcome == "succeeded" else "failed",
        attempts=attempts,
        inputs={"prompt": "Ticket: x"},
        output="billing",
        error=None,
        started_at=START,
        finished_at=START,
        duration_ms=5,
    )
    return Trajectory(
        tenant="acme",
        mission_id="m1",
        mission_name="ticket-triage",
        plan_hash="h",
        outcome=outcome,
        started_at=START,
        finished_at=START,
        duration_ms=5,
        steps=[step],
        outputs=outputs,
    )


@pytest.mark.parametrize("name", ["ticket-triage", "invoice-extraction", "code-review"])
def test_the_shipped_suites_load_with_both_splits(name: str) -> None:
    loaded = load_suite(SUITES / name)

    training, held = loaded.suite.split()

    assert training and held
    assert loaded.mission_file.name == "mission.yaml"
    assert {s.id for s in training}.isdisjoint({s.id for s in held})


def test_the_split_is_stable_when_scenarios_are_added_or_reordered() -> None:
    suite = load_suite(SUITES / "ticket-triage").suite
    extra = Scenario(id="t99", variables={"ticket": "new"})
    grown = suite.model_copy(update={"scenarios": [extra, *reversed(suite.scenarios)]})

    before = {s.id for s in suite.scenarios if suite.held_out(s)}
    after = {s.id for s in grown.scenarios if grown.held_out(s)} - {"t99"}

    assert before == after


def test_a_broken_suite_is_reported_with_file_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(
        "name: s\nmission: mission.yaml\nscenarios:\n  - id: a\n    expect:\n"
        "      - {output: x, equals: 1, contains: y}\n  - id: a\nsearch: {steps: [s]}\n"
    )

    with pytest.raises(SuiteFileError) as failure:
        load_suite(tmp_path)

    rendered = str(failure.value)
    assert f"{tmp_path / 'suite.yaml'}:" in rendered
    assert "exactly one of equals" in rendered


def test_a_suite_whose_mission_leaves_its_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(
        "name: s\nmission: ../elsewhere.yaml\nscenarios: [{id: a}, {id: b}]\nsearch: {steps: [s]}\n"
    )

    with pytest.raises(SuiteFileError, match="outside the suite's folder"):
        load_suite(tmp_path)


@pytest.mark.parametrize(
    ("expectation", "value", "met"),
    [
        ({"equals": "billing"}, " billing\n", True),
        ({"equals": "billing"}, "Billing", False),
        ({"contains": "SQL injection"}, "a sql injection here", True),
        ({"matches": r"(?m)^VERDICT: approve$"}, "ok\nVERDICT: approve", True),
        ({"matches": r"^VERDICT"}, "no verdict", False),
        ({"json_schema": {"type": "object", "required": ["a"]}}, '{"a": 1}', True),
        ({"json_schema": {"type": "object", "required": ["a"]}}, '{"b": 1}', False),
        ({"json_schema": {"type": "object"}}, "not json", False),
    ],
)
def test_each_expectation_kind(expectation: dict[str, Any], value: str, met: bool) -> None:
    check = Expectation(output="out", **expectation)

    assert (check_expectation(check, {"out": value}) is None) is met


def test_a_missing_output_fails_its_expectation() -> None:
    problem = check_expectation(Expectation(output="out", equals="x"), {})

    assert problem == "output 'out' is missing"


def test_the_rule_judge_weighs_expectations_outcome_and_attempts() -> None:
    scenario = Scenario(
        id="a",
        expect=[
            Expectation(output="category", equals="billing"),
            Expectation(output="category", contains="bill"),
        ],
    )
    settings = JudgeSettings(weights=JudgeWeights(expectations=1, outcome=1, attempts=1))

    good = judge_by_rules(trajectory({"category": "billing"}), scenario, settings)
    half = judge_by_rules(trajectory({"category": "billing!"}), scenario, settings)
    retried = judge_by_rules(trajectory({"category": "billing"}, attempts=2), scenario, settings)
    failed = judge_by_rules(trajectory({"category": None}, outcome="failed"), scenario, settings)

    assert good.score == 1.0 and good.passed
    assert half.score == pytest.approx(2.5 / 3) and not half.passed
    assert retried.score == pytest.approx(2 / 3) and retried.passed
    # Nothing met and a failed outcome; only the first-attempt part is earned.
    assert failed.score == pytest.approx(1 / 3) and not failed.passed
    assert "output 'category' is missing" in failed.explanation
    assert good.rubric_hash == half.rubric_hash


def test_the_bootstrap_interval_is_seeded_and_brackets_the_mean() -> None:
    differences = [0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0]

    low, high = paired_interval(differences, 0.95, 2000, seed=3)

    assert (low, high) == paired_interval(differences, 0.95, 2000, seed=3)
    assert low < 0.625 < high
    assert paired_interval([0.0] * 5, 0.95, 2000, seed=1) == (0.0, 0.0)
    assert not should_promote([0.5] * 4, [0.5] * 4, 0.05, 0.0)
    assert should_promote([0.2] * 4, [0.8] * 4, 0.05, 0.6)


def _held_out(rng: random.Random, quality: float, scenarios: int = 12) -> list[float]:
    """Rewards of one policy on held-out scenarios: right (1) with chance `quality`, else 0."""
    return [float(rng.random() < quality) for _ in range(scenarios)]


def _promoted(rng: random.Random, seed: int, baseline: float, candidate: float) -> bool:
    before, after = _held_out(rng, baseline), _held_out(rng, candidate)
    low, _ = paired_interval([a - b for a, b in zip(after, before, strict=True)], 0.95, 400, seed)
    return should_promote(before, after, 0.05, low)


def test_noise_alone_is_rarely_promoted_and_a_real_gain_usually_is() -> None:
    """Equal policies whose answers differ by chance, on 12 held-out scenarios (the shipped
    suites hold out 12 or so): the gate promotes at most 5% of 300 seeds (9 when measured); a
    candidate right 40 points more often is promoted in at least half of them (164)."""
    rng = random.Random(7)
    noise = sum(_promoted(rng, seed, 0.5, 0.5) for seed in range(300))
    gain = sum(_promoted(rng, seed, 0.4, 0.8) for seed in range(300))

    assert noise <= 15, noise
    assert gain >= 150, gain
