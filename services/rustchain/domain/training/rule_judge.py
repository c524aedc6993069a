"""The rule judge: a trajectory's score from the suite's expectations and from how it ran.

Pure and deterministic, so a recorded `TrajectoryJudged` can always be recomputed from the
trajectory and the suite. The score is a weighted mean in [0, 1] of: the share of expectations
met, the outcome, the share of steps that did not fail, first-attempt success, tokens within the
budget and time within the budget (weights from the suite; a zero weight leaves a part out).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jsonschema

from rustchain.domain.plans.plan import canonical_json
from rustchain.domain.runs.trajectory import Trajectory
from rustchain.domain.training.suite import Expectation, JudgeSettings, Scenario

RULE_JUDGE = "rules"
CHARACTERS_PER_TOKEN = 4
"""A rough token count for steps whose provider did not report one: about four characters."""
MAX_MATCHED_CHARACTERS = 100_000


@dataclass(frozen=True)
class Judgement:
    """A score in [0, 1], whether every expectation held on a successful run, and why."""

    judge: str
    rubric_hash: str
    score: float
    passed: bool
    explanation: str


def _as_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def check_expectation(expectation: Expectation, outputs: dict[str, Any]) -> str | None:
    """None when the output meets the expectation, else what is wrong."""
    name = expectation.output
    if name not in outputs or outputs[name] is None:
        return f"output '{name}' is missing"
    value = outputs[name]
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if expectation.equals is not None:
        same = value == expectation.equals or (
            isinstance(value, str) and value.strip() == str(expectation.equals).strip()
        )
        return None if same else f"output '{name}' is {text[:80]!r}, not {expectation.equals!r}"
    if expectation.contains is not None:
        found = expectation.contains.lower() in text.lower()
        return None if found else f"output '{name}' does not contain {expectation.contains!r}"
    if expectation.matches is not None:
        found = re.search(expectation.matches, text[:MAX_MATCHED_CHARACTERS]) is not None
        return None if found else f"output '{name}' does not match /{expectation.matches}/"
    try:
        validator = _validator(canonical_json(expectation.json_schema or {}))
    except jsonschema.SchemaError as error:
        return f"the suite's schema for '{name}' is invalid: {error.message[:120]}"
    failure = jsonschema.exceptions.best_match(validator.iter_errors(_as_json(value)))
    return (
        None if failure is None else f"output '{name}' breaks its schema: {failure.message[:120]}"
    )


@lru_cache(maxsize=256)
def _validator(schema: str) -> Any:
    """A checked validator per schema (checking a schema costs more than using it)."""
    document = json.loads(schema)
    kind = jsonschema.validators.validator_for(document)
    kind.check_schema(document)
    return kind(document)


def estimated_tokens(trajectory: Trajectory) -> int:
    """The tokens a trajectory's model steps sent and received, estimated from their text."""
    characters = sum(
        len(json.dumps(step.inputs, default=str)) + len(json.dumps(step.output, default=str))
        for step in trajectory.steps
        if step.step_type in {"llm", "chain", "agent"}
    )
    return characters // CHARACTERS_PER_TOKEN


def rubric_hash(settings: JudgeSettings, scenario: Scenario) -> str:
    """The hash of what a rule score depends on besides the trajectory: weights, budgets and
    the scenario's expectations."""
    rubric = {
        "weights": settings.weights.model_dump(),
        "token_budget": settings.token_budget,
        "time_budget_seconds": settings.time_budget_seconds,
        "expect": [e.model_dump(exclude_none=True) for e in scenario.expect],
    }
    return hashlib.sha256(canonical_json(rubric).encode()).hexdigest()


def judge_by_rules(
    trajectory: Trajectory, scenario: Scenario, settings: JudgeSettings
) -> Judgement:
    """The rule score of one trajectory of one scenario."""
    problems = [
        problem
        for expectation in scenario.expect
        if (problem := check_expectation(expectation, trajectory.outputs)) is not None
    ]
    met = 1.0 - len(problems) / len(scenario.expect) if scenario.expect else 1.0
    succeeded = trajectory.outcome == "succeeded"
    steps = trajectory.steps or []
    failed = sum(step.status == "failed" for step in steps)
    retried = sum(step.attempts > 1 for step in steps)
    tokens = estimated_tokens(trajectory)
    seconds = trajectory.duration_ms / 1000
    parts = {
        "expectations": met,
        "outcome": 1.0 if succeeded else 0.0,
        "failed_steps": 1.0 - failed / len(steps) if steps else 1.0,
        "attempts": 1.0 - retried / len(steps) if steps else 1.0,
        "tokens": max(0.0, 1.0 - tokens / settings.token_budget),
        "time": max(0.0, 1.0 - seconds / settings.time_budget_seconds),
    }
    weights = settings.weights.model_dump()
    total = sum(weights.values())
    score = sum(weights[k] * parts[k] for k in parts) / total if total else met
    shown = ", ".join(f"{k} {parts[k]:.2f}" for k in parts if weights[k])
    why = "; ".join(problems) if problems else "every expectation met"
    return Judgement(
        judge=RULE_JUDGE,
        rubric_hash=rubric_hash(settings, scenario),
        score=round(score, 6),
        passed=succeeded and not problems,
        explanation=f"{why} ({shown}; outcome {trajectory.outcome})",
    )
