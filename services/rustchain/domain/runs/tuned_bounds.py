"""The bounds a learned policy must keep on a whole mission: its time and its token budget.

The verifier proved the mission as written within the tenant's limits: the longest path of
timeouts x attempts + backoff within `limits.max_mission_seconds`, and every LLM call at its
limit on every attempt within `llm.max_tokens_per_mission`. A policy that sets more attempts, a
longer backoff or a larger `max_tokens` on a step changes both sums, so they are computed again
with the policy's values, the same way, before the policy may apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rustchain.domain.language import graph
from rustchain.domain.language.mission import RetryPolicy
from rustchain.domain.plans.plan import Plan, PlannedStep
from rustchain.domain.policy.checks import Refusal
from rustchain.domain.policy.model import Policy
from rustchain.domain.policy.obligations import ConstraintGenerator, TokenUse


@dataclass(frozen=True)
class StepChange:
    """What a policy sets on one step that bears on the mission's bounds (None: as written)."""

    step_id: str
    max_attempts: int | None = None
    backoff_seconds: float | None = None
    max_tokens: int | None = None

    def retry(self, written: RetryPolicy) -> RetryPolicy:
        """The step's retry with the policy's values."""
        return written.model_copy(
            update={
                "max_attempts": self.max_attempts or written.max_attempts,
                "backoff_seconds": (
                    written.backoff_seconds
                    if self.backoff_seconds is None
                    else self.backoff_seconds
                ),
            }
        )


@dataclass(frozen=True)
class PlanBounds:
    """A plan with the LLM token uses its steps' constraint generators declare."""

    plan: Plan
    tokens: Mapping[str, tuple[TokenUse, ...]]

    def refusal(self, change: StepChange, policy: Policy) -> Refusal | None:
        """Why the tenant's limits refuse the change, or None; a change never refuses a plan
        for what the plan as written already did (the verdict judged that)."""
        if (change.max_attempts, change.backoff_seconds, change.max_tokens) == (None, None, None):
            return None
        limit = policy.limits.max_mission_seconds
        seconds = self._seconds(change)
        if seconds > limit and seconds > self._seconds(None):
            return Refusal(
                "mission.time",
                f"with these attempts the mission may run longer than {limit:g} s (the longest"
                " path of timeouts, retries and backoff)",
                f"{seconds:g} s",
            )
        budget = policy.llm.max_tokens_per_mission
        tokens = self._tokens(change, policy)
        if tokens > budget and tokens > self._tokens(None, policy):
            return Refusal(
                "llm.budget",
                f"with these attempts the mission may spend more than {budget} tokens (every"
                " LLM call, at its limit, on every attempt)",
                str(tokens),
            )
        return None

    def _retry(self, step: PlannedStep, change: StepChange | None) -> RetryPolicy:
        if change is None or change.step_id != step.id:
            return step.retry
        return change.retry(step.retry)

    def _seconds(self, change: StepChange | None) -> float:
        steps = {step.id: step for step in self.plan.steps}

        def budget(step_id: str) -> float:
            step = steps[step_id]
            retry = self._retry(step, change)
            waits = retry.backoff_seconds * (retry.max_attempts - 1)
            return step.timeout_seconds * retry.max_attempts + waits

        order = list(steps)
        deps = {step.id: step.depends_on for step in self.plan.steps}
        return graph.critical_path(order, deps, budget)[1]

    def _tokens(self, change: StepChange | None, policy: Policy) -> int:
        total = 0
        for step in self.plan.steps:
            attempts = self._retry(step, change).max_attempts
            tuned = change is not None and change.step_id == step.id and change.max_tokens
            for use in self.tokens.get(step.id, ()):
                per_call = use.tokens if use.tokens is not None else policy.llm.default_max_tokens
                if tuned and use.field == "max_tokens":
                    per_call = int(tuned)
                total += per_call * use.calls * attempts
        return total


def plan_bounds(plan: Plan, generators: Mapping[str, ConstraintGenerator]) -> PlanBounds:
    """The plan's bounds, with the token uses its steps' generators declare (a step whose
    generator cannot read its parameters declares none: the verifier left it unproven)."""
    tokens: dict[str, tuple[TokenUse, ...]] = {}
    for step in plan.steps:
        generator = generators.get(step.step_type)
        if generator is None:
            continue
        try:
            uses = tuple(o for o in generator(step) if isinstance(o, TokenUse))
        except (TypeError, AttributeError, ValueError):
            continue
        if uses:
            tokens[step.id] = uses
    return PlanBounds(plan, tokens)
