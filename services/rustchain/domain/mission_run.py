"""A mission run's state, folded from its facts; live execution and replay use the same code."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from rustchain.domain.plan import Plan
from rustchain.domain.run_events import (
    MissionCancelRequested,
    MissionFinished,
    MissionStarted,
    RunEvent,
    StepFailed,
    StepInterrupted,
    StepSkipped,
    StepStarted,
    StepSucceeded,
)


class StepStatus(StrEnum):
    """Where a step stands."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


FINISHED = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED})


class RunTransitionError(ValueError):
    """A fact that cannot follow the run's history (a bug or a tampered history)."""


@dataclass
class StepState:
    """One step's progress: status, attempts, output or error, and when it may retry."""

    status: StepStatus = StepStatus.PENDING
    attempt: int = 0
    failures: int = 0
    output: Any = None
    error: str | None = None
    retry_at: datetime | None = None
    reason: str | None = None


@dataclass
class MissionRun:
    """The state of one run of a plan."""

    plan: Plan
    plan_hash: str
    variables: dict[str, Any]
    workspace: str
    steps: dict[str, StepState] = field(default_factory=dict)
    cancel_reason: str | None = None
    outcome: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls, started: MissionStarted) -> MissionRun:
        """The run as its first fact describes it."""
        plan = Plan.model_validate(started.plan)
        run = cls(plan, started.plan_hash, dict(started.variables), started.workspace)
        run.steps = {step.id: StepState() for step in plan.steps}
        return run

    @classmethod
    def fold(cls, events: Iterable[RunEvent]) -> MissionRun:
        """Replay a run's facts, in order, into its state."""
        iterator = iter(events)
        first = next(iterator, None)
        if not isinstance(first, MissionStarted):
            raise RunTransitionError("a run's history must begin with MissionStarted")
        run = cls.start(first)
        for event in iterator:
            run.apply(event)
        return run

    @property
    def finished(self) -> bool:
        """True once the mission has reached its end."""
        return self.outcome is not None

    def step(self, step_id: str) -> StepState:
        """The state of a step of this run."""
        try:
            return self.steps[step_id]
        except KeyError:
            raise RunTransitionError(f"the plan has no step '{step_id}'") from None

    def apply(self, event: RunEvent) -> None:
        """Change state by one fact; refuses facts that cannot follow the history."""
        if self.finished:
            raise RunTransitionError(f"{event.type} after the mission finished")
        if isinstance(event, StepStarted):
            state = self._expect(event.step_id, StepStatus.PENDING, event.type)
            if event.attempt != state.attempt + 1:
                raise RunTransitionError(
                    f"step '{event.step_id}' attempt {event.attempt} follows {state.attempt}"
                )
            state.status, state.attempt, state.retry_at = StepStatus.RUNNING, event.attempt, None
        elif isinstance(event, StepSucceeded):
            state = self._expect_attempt(event.step_id, event.attempt, event.type)
            state.status, state.output, state.error = StepStatus.SUCCEEDED, event.output, None
        elif isinstance(event, StepFailed):
            state = self._expect_attempt(event.step_id, event.attempt, event.type)
            state.failures += 1
            state.error, state.retry_at = event.error, event.retry_at
            state.status = StepStatus.PENDING if event.retry_at is not None else StepStatus.FAILED
        elif isinstance(event, StepInterrupted):
            state = self._expect_attempt(event.step_id, event.attempt, event.type)
            state.reason = event.reason
            if event.rerun:
                state.status = StepStatus.PENDING
            else:
                state.status, state.error = StepStatus.FAILED, event.reason
        elif isinstance(event, StepSkipped):
            state = self._expect(event.step_id, StepStatus.PENDING, event.type)
            state.status, state.reason = StepStatus.SKIPPED, event.reason
        elif isinstance(event, MissionCancelRequested):
            self.cancel_reason = self.cancel_reason or event.reason
        elif isinstance(event, MissionFinished):
            if any(s.status not in FINISHED for s in self.steps.values()):
                raise RunTransitionError("MissionFinished while steps are unfinished")
            self.outcome, self.outputs = event.outcome, dict(event.outputs)
        else:
            raise RunTransitionError(f"{event.type} cannot occur during a run")

    def _expect(self, step_id: str, status: StepStatus, fact: str) -> StepState:
        state = self.step(step_id)
        if state.status is not status:
            raise RunTransitionError(f"{fact} for step '{step_id}' while it is {state.status}")
        return state

    def _expect_attempt(self, step_id: str, attempt: int, fact: str) -> StepState:
        state = self._expect(step_id, StepStatus.RUNNING, fact)
        if attempt != state.attempt:
            raise RunTransitionError(
                f"{fact} for attempt {attempt} of step '{step_id}', which runs attempt "
                f"{state.attempt}"
            )
        return state
