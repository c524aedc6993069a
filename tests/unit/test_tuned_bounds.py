"""A learned policy's attempts, backoff and token budget keep the mission within the tenant's
time and token limits, computed as the verifier computes them."""

from __future__ import annotations

from rustchain.domain.plans.compiler import compile_mission
from rustchain.domain.plans.plan import Plan
from rustchain.domain.policy.model import Policy
from rustchain.domain.runs.tuned_bounds import PlanBounds, StepChange, plan_bounds
from rustchain.domain.runs.tuned_policy import StepSettings, refusal_of, tuned_inputs
from rustchain.domain.training.suite import Suite
from rustchain.steps import constraint_generators, default_registry
from rustchain.trainer.optimizer import Optimiser

MISSION = b"""
version: "1.0"
name: two-calls
steps:
  - id: draft
    name: Draft
    step_type: llm
    timeout_seconds: 100
    parameters: {prompt: "Write", max_tokens: 1000}
  - id: check
    name: Check
    step_type: llm
    timeout_seconds: 50
    depends_on: [draft]
    retry: {max_attempts: 2, backoff_seconds: 10}
    parameters: {prompt: "Check {draft.output}", max_tokens: 500}
"""


def bounds() -> PlanBounds:
    compiled = compile_mission(MISSION, "two-calls.yaml", default_registry())
    assert isinstance(compiled.plan, Plan)
    return plan_bounds(compiled.plan, constraint_generators())


def policy(seconds: float = 14_400, tokens: int = 100_000) -> Policy:
    return Policy.model_validate(
        {"limits": {"max_mission_seconds": seconds}, "llm": {"max_tokens_per_mission": tokens}}
    )


def test_the_bounds_are_the_verifiers_sums() -> None:
    found = bounds()
    # 100 + (2 x 50 + 10) s along the one path; 1000 + 2 x 500 tokens.
    assert found.refusal(StepChange("draft", max_attempts=1), policy(210, 2000)) is None
    refused = found.refusal(StepChange("draft", max_attempts=2), policy(210, 10_000))
    assert refused is not None and refused.rule == "mission.time"


def test_more_attempts_than_the_token_budget_allows_are_refused() -> None:
    refused = bounds().refusal(StepChange("check", max_attempts=3), policy(tokens=2000))
    assert refused is not None and refused.rule == "llm.budget" and refused.value == "2500"
    assert bounds().refusal(StepChange("check", max_attempts=3), policy(tokens=2500)) is None


def test_a_larger_max_tokens_counts_on_every_attempt() -> None:
    change = StepChange("check", max_tokens=600)
    refused = bounds().refusal(change, policy(tokens=2100))
    assert refused is not None and refused.rule == "llm.budget" and refused.value == "2200"


def test_a_change_never_refuses_what_the_plan_already_did() -> None:
    """The verdict judged the mission as written; fewer attempts are never refused."""
    tight = policy(seconds=10, tokens=10)
    assert bounds().refusal(StepChange("check", max_attempts=1), tight) is None


def test_a_refused_retry_is_not_applied_and_says_why() -> None:
    settings = StepSettings(max_attempts=5, backoff_seconds=0)
    inputs = {"prompt": "Write", "max_tokens": 1000}

    sent, tuning = tuned_inputs(inputs, settings, 4, policy(seconds=300), bounds(), "draft")

    assert sent == inputs
    assert "[mission.time]" in tuning["refused"] and tuning["policy_version"] == 4
    assert refusal_of(settings, policy(), bounds(), "draft") is None
    sent, tuning = tuned_inputs(inputs, settings, 4, policy(), bounds(), "draft")
    assert tuning == {
        "policy_version": 4,
        "overrides": {},
        "retry": {"max_attempts": 5, "backoff_seconds": 0.0},
    }


def test_the_optimiser_searches_attempts_within_the_bounds() -> None:
    suite = Suite.model_validate(
        {
            "name": "two-calls",
            "mission": "mission.yaml",
            "scenarios": [{"id": "a"}, {"id": "b"}],
            "search": {"steps": ["check"], "max_attempts": [1, 2, 3, 4]},
            "optimiser": {"candidates": 16},
        }
    )
    optimiser = Optimiser(
        suite,
        "two-calls",
        "acme",
        None,  # type: ignore[arg-type]  # candidates() runs nothing
        None,  # type: ignore[arg-type]  # and records nothing
        policy(tokens=2500),
        bounds=bounds(),
    )

    found = optimiser.candidates({}, [])

    assert sorted(c.steps["check"].max_attempts or 0 for c in found) == [1, 2, 3]
    assert all("max_attempts=" in c.name for c in found)
