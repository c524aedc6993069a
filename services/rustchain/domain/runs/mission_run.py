"""A mission run's state, folded from its facts; live execution and replay use the same code."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from rustchain.domain.language.mission import RetryPolicy
from rustchain.domain.plans.plan import Plan
from rustchain.domain.runs.run_events import (
    MissionCancelRequested,
    MissionFinished,
    MissionStarted,
    RunEvent,
    StepFailed,
    StepInterrupted,
    StepSkipped,
    StepStarted,
    StepSucceeded,
    WorkspaceNotSaved,
    WorkspaceSaved,
)
from rustchain.domain.runs.tuned_policy import tuned_retry


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
    # The retry a learned policy set on the running attempt (None: the plan's own).
    retry: RetryPolicy | None = None


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
    # Indexes kept up to date by `apply`, so deciding what comes next costs time in proportion to
    # what changed, not to the size of the plan.
    order: dict[str, int] = field(default_factory=dict)
    dependents: dict[str, list[str]] = field(default_factory=dict)
    unfinished_deps: dict[str, int] = field(default_factory=dict)
    candidates: set[str] = field(default_factory=set)
    running: int = 0
    finished_steps: int = 0
    failed_untolerated: list[str] = field(default_factory=list)
    secret_salt: str = ""
    # The workspace's last snapshot, or why the last one could not be kept (issue 15).
    workspace_saved: WorkspaceSaved | None = None
    workspace_not_saved: WorkspaceNotSaved | None = None

    @classmethod
    def start(cls, started: MissionStarted) -> MissionRun:
        """The run as its first fact describes it."""
        plan = Plan.model_validate(started.plan)
        run = cls(plan, started.plan_hash, dict(started.variables), started.workspace)
        run.secret_salt = started.secret_salt
        run.steps = {step.id: StepState() for step in plan.steps}
        run.order = {
            step_id: index
            for index, step_id in enumerate(s for level in plan.levels for s in level)
        }
        run.dependents = {step.id: [] for step in plan.steps}
        for step in plan.steps:
            for dep in step.depends_on:
                run.dependents[dep].append(step.id)
        run.unfinished_deps = {step.id: len(step.depends_on) for step in plan.steps}
        run.candidates = {step.id for step in plan.steps if not step.depends_on}
        return run

    def _finish_step(self, step_id: str, status: StepStatus) -> None:
        state = self.steps[step_id]
        if state.status is StepStatus.RUNNING:
            self.running -= 1
        state.status = status
        self.candidates.discard(step_id)
        self.finished_steps += 1
        if status is StepStatus.FAILED and not self.plan.step(step_id).continue_on_error:
            self.failed_untolerated.append(step_id)
        for dependent in self.dependents[step_id]:
            self.unfinished_deps[dependent] -= 1
            if self.unfinished_deps[dependent] == 0:
                self.candidates.add(dependent)

    def _back_to_pending(self, step_id: str) -> None:
        self.steps[step_id].status = StepStatus.PENDING
        self.running -= 1
        self.candidates.add(step_id)

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
            if event.tuning and "retry" in event.tuning:
                state.retry = tuned_retry(self.plan.step(event.step_id).retry, event.tuning)
            else:
                state.retry = None
            self.candidates.discard(event.step_id)
            self.running += 1
        elif isinstance(event, StepSucceeded):
            state = self._expect_attempt(event.step_id, event.attempt, event.type)
            state.output, state.error = event.output, None
            self._finish_step(event.step_id, StepStatus.SUCCEEDED)
        elif isinstance(event, StepFailed):
            state = self._expect_attempt(event.step_id, event.attempt, event.type)
            state.failures += 1
            state.error, state.retry_at = event.error, event.retry_at
            if event.retry_at is not None:
                self._back_to_pending(event.step_id)
            else:
                self._finish_step(event.step_id, StepStatus.FAILED)
        elif isinstance(event, StepInterrupted):
            state = self._expect_attempt(event.step_id, event.attempt, event.type)
            state.reason = event.reason
            if event.rerun:
                self._back_to_pending(event.step_id)
            else:
                state.error = event.reason
                self._finish_step(event.step_id, StepStatus.FAILED)
        elif isinstance(event, StepSkipped):
            state = self._expect(event.step_id, StepStatus.PENDING, event.type)
            state.reason = event.reason
            self._finish_step(event.step_id, StepStatus.SKIPPED)
        elif isinstance(event, MissionCancelRequested):
            self.cancel_reason = self.cancel_reason or event.reason
        elif isinstance(event, WorkspaceSaved):
            self.workspace_saved, self.workspace_not_saved = event, None
        elif isinstance(event, WorkspaceNotSaved):
            self.workspace_not_saved = event
        elif isinstance(event, MissionFinished):
            if self.finished_steps != len(self.steps):
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
