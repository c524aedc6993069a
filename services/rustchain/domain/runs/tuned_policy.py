"""Learned policies: per tenant and mission, the settings each tuned llm step is rendered with.

A policy is versioned. The trainer proposes a version, evaluates it on held-out scenarios,
promotes it only on evidence, and may roll back; each of these is an event, and the versions
and which one is promoted are a fold of those events (pure, so an auditor gets the same).
The executor applies the promoted version's settings to an llm step's rendered parameters, and
records the result and the settings applied in `StepStarted`: what was sent is what was recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from rustchain.domain.language.mission import RetryPolicy
from rustchain.domain.policy.checks import Refusal, check_model, check_tokens
from rustchain.domain.policy.model import Policy
from rustchain.domain.runs.tuned_bounds import PlanBounds, StepChange

_STRICT = ConfigDict(extra="forbid", frozen=True)

POLICY_PROPOSED = "PolicyProposed"
POLICY_EVALUATED = "PolicyEvaluated"
POLICY_PROMOTED = "PolicyPromoted"
POLICY_ROLLED_BACK = "PolicyRolledBack"
POLICY_EVENT_TYPES = frozenset(
    {POLICY_PROPOSED, POLICY_EVALUATED, POLICY_PROMOTED, POLICY_ROLLED_BACK}
)
TUNED_STEP_TYPES = frozenset({"llm"})


class Demonstration(BaseModel):
    """A prompt and the answer a high-reward trajectory gave to it."""

    model_config = _STRICT
    prompt: str
    answer: str


class StepSettings(BaseModel):
    """What a policy sets on one llm step; None leaves the mission's own value."""

    model_config = _STRICT
    model: str | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    system: str | None = None
    examples: list[Demonstration] = Field(default_factory=list)
    # How the executor retries the step (the plan's `retry`), not a parameter of the step.
    max_attempts: Annotated[int, Field(ge=1, le=100)] | None = None
    backoff_seconds: Annotated[float, Field(ge=0, le=86_400)] | None = None

    def overrides(self) -> dict[str, Any]:
        """The llm step parameters this sets, as they are rendered."""
        found = self.model_dump(mode="json", exclude_none=True, exclude=_RETRY_FIELDS)
        if not self.examples:
            found.pop("examples", None)
        return found

    def retry(self) -> dict[str, Any]:
        """The retry settings this sets ({}: the plan's own)."""
        return self.model_dump(mode="json", exclude_none=True, include=_RETRY_FIELDS)

    def change(self, step_id: str) -> StepChange:
        """What these settings change of the mission's time and token bounds."""
        return StepChange(step_id, self.max_attempts, self.backoff_seconds, self.max_tokens)


_RETRY_FIELDS = {"max_attempts", "backoff_seconds"}


class Score(BaseModel):
    """A policy's score on a set of scenarios: the mean reward and how many passed."""

    model_config = _STRICT
    score: float
    passed: int
    total: int


class PolicyVersion(BaseModel):
    """One proposed version, with its evaluation when there is one."""

    model_config = ConfigDict(extra="forbid")
    version: int
    mission: str
    steps: dict[str, StepSettings]
    reason: str = ""
    baseline: Score | None = None
    candidate: Score | None = None
    interval: tuple[float, float] | None = None
    promoted_at: str | None = None
    rolled_back_at: str | None = None


class MissionPolicies(BaseModel):
    """Every version of one tenant's policy for one mission, and which one applies."""

    model_config = ConfigDict(extra="forbid")
    mission: str
    versions: dict[int, PolicyVersion] = Field(default_factory=dict)
    # The promoted version (0: none; the mission runs as written).
    current: int = 0
    # The versions promoted before the current one, most recent last (rollback pops it).
    history: list[int] = Field(default_factory=list)

    @property
    def next_version(self) -> int:
        """The number the next proposal takes."""
        return max(self.versions, default=0) + 1

    def promoted(self) -> PolicyVersion | None:
        """The version that applies, if any."""
        return self.versions.get(self.current)


def fold_policies(
    mission: str, events: Iterable[tuple[str, dict[str, Any], str]]
) -> MissionPolicies:
    """The policies of a mission from its events: (type, payload, time) in chain order."""
    state = MissionPolicies(mission=mission)
    for kind, payload, when in events:
        if payload.get("mission") != mission:
            continue
        version = int(payload.get("version", 0))
        if kind == POLICY_PROPOSED:
            state.versions[version] = PolicyVersion(
                version=version,
                mission=mission,
                steps={k: StepSettings.model_validate(v) for k, v in payload["steps"].items()},
                reason=str(payload.get("reason", "")),
            )
        elif kind == POLICY_EVALUATED and version in state.versions:
            found = state.versions[version]
            found.baseline = Score.model_validate(payload["baseline"])
            found.candidate = Score.model_validate(payload["candidate"])
            low, high = payload["interval"]
            found.interval = (float(low), float(high))
        elif kind == POLICY_PROMOTED and version in state.versions:
            if state.current:
                state.history.append(state.current)
            state.current = version
            state.versions[version].promoted_at = when
        elif kind == POLICY_ROLLED_BACK:
            if state.current in state.versions:
                state.versions[state.current].rolled_back_at = when
            state.current = int(payload.get("to_version", 0))
            if state.history and state.history[-1] == state.current:
                state.history.pop()
    return state


def refusal_of(
    settings: StepSettings,
    tenant_policy: Policy,
    bounds: PlanBounds | None = None,
    step_id: str = "",
) -> Refusal | None:
    """Why the tenant's verifier policy refuses these settings, or None: a learned policy can
    never choose a model, or a token budget, the tenant may not use, nor (given the plan's
    bounds) attempts that take the mission past its time or token limits."""
    if settings.model is not None and (refused := check_model(tenant_policy, settings.model)):
        return refused
    if settings.max_tokens is not None and (
        refused := check_tokens(tenant_policy, settings.max_tokens)
    ):
        return refused
    if bounds is not None:
        return bounds.refusal(settings.change(step_id), tenant_policy)
    return None


def tuned_inputs(
    inputs: dict[str, Any],
    settings: StepSettings,
    version: int,
    tenant_policy: Policy | None,
    bounds: PlanBounds | None = None,
    step_id: str = "",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The llm step's inputs with the policy applied, and what to record of it in StepStarted
    (`retry` too when the policy sets the step's attempts or backoff).

    Settings the tenant's policy refuses are not applied (the step runs as the mission wrote it)
    and the record says why.
    """
    refused = (
        refusal_of(settings, tenant_policy, bounds, step_id) if tenant_policy is not None else None
    )
    if refused is not None:
        reason = f"[{refused.rule}] {refused.explanation} (value: {refused.value!r})"
        return inputs, {"policy_version": version, "refused": reason}
    overrides = settings.overrides()
    tuning: dict[str, Any] = {"policy_version": version, "overrides": overrides}
    if retry := settings.retry():
        tuning["retry"] = retry
    return {**inputs, **overrides}, tuning


def tuned_retry(written: RetryPolicy, tuning: dict[str, Any] | None) -> RetryPolicy:
    """The retry an attempt runs under: the plan's, with what its StepStarted's tuning set."""
    if not tuning or "retry" not in tuning:
        return written
    return written.model_copy(update=tuning["retry"])


def reapply_tuning(inputs: dict[str, Any], tuning: dict[str, Any] | None) -> dict[str, Any]:
    """A fresh rendering with the recorded tuning applied again (for re-execution)."""
    if not tuning or "overrides" not in tuning:
        return inputs
    return {**inputs, **tuning["overrides"]}
