"""What a mission run does next: pure decisions that return the facts to record.

The executor records what these return and runs the steps they start; after a crash it folds the
stored facts back into a MissionRun and calls `recover`, so live running and resuming share code.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rustchain.domain.bindings import RenderContext, render
from rustchain.domain.mission_run import FINISHED, MissionRun, StepStatus
from rustchain.domain.plan import Plan, PlannedStep
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

DEFAULT_MAX_PARALLEL_STEPS = 4
NOT_IDEMPOTENT_INTERRUPTED = (
    "the executor stopped while this step was running; the step is not marked idempotent "
    "(retry.idempotent), so it is not run again: it may or may not have taken effect"
)
IDEMPOTENT_INTERRUPTED = "the executor stopped while this step was running; it is idempotent"


def start_mission(plan: Plan, variables: dict[str, Any], workspace: str) -> list[RunEvent]:
    """The first fact of a run."""
    return [
        MissionStarted(
            plan=plan.model_dump(mode="json"),
            plan_hash=plan.content_hash,
            variables=variables,
            workspace=workspace,
        )
    ]


def _tolerated(step: PlannedStep) -> bool:
    return step.continue_on_error


def _halted(run: MissionRun, by_id: dict[str, PlannedStep]) -> str | None:
    if run.cancel_reason is not None:
        return f"the mission was cancelled: {run.cancel_reason}"
    fail_fast = run.plan.config.fail_fast
    if fail_fast is not False:
        for step_id, state in run.steps.items():
            if state.status is StepStatus.FAILED and not _tolerated(by_id[step_id]):
                return f"fail_fast: step '{step_id}' failed"
    return None


def next_events(run: MissionRun, now: datetime) -> list[RunEvent]:
    """Skips, starts up to the parallelism limit, or the mission's end: whatever is due now."""
    if run.finished:
        return []
    by_id = {step.id: step for step in run.plan.steps}
    status = {step_id: state.status for step_id, state in run.steps.items()}
    events: list[RunEvent] = []
    halted = _halted(run, by_id)
    order = [step_id for level in run.plan.levels for step_id in level]
    for step_id in order:
        if status[step_id] is not StepStatus.PENDING:
            continue
        reason = halted or _blocked_by(by_id[step_id], status, by_id)
        if reason is not None:
            events.append(StepSkipped(step_id=step_id, reason=reason))
            status[step_id] = StepStatus.SKIPPED
    limit = run.plan.config.max_parallel_steps or DEFAULT_MAX_PARALLEL_STEPS
    free = limit - sum(1 for s in status.values() if s is StepStatus.RUNNING)
    for step_id in order:
        if free <= 0:
            break
        state = run.steps[step_id]
        ready = all(
            status[d] is StepStatus.SUCCEEDED
            or (status[d] is StepStatus.FAILED and _tolerated(by_id[d]))
            for d in by_id[step_id].depends_on
        )
        due = state.retry_at is None or state.retry_at <= now
        if status[step_id] is StepStatus.PENDING and ready and due:
            events.append(StepStarted(step_id=step_id, attempt=state.attempt + 1))
            status[step_id] = StepStatus.RUNNING
            free -= 1
    if all(s in FINISHED for s in status.values()):
        events.append(_finish(run, status, by_id))
    return events


def _blocked_by(
    step: PlannedStep, status: dict[str, StepStatus], by_id: dict[str, PlannedStep]
) -> str | None:
    for dep in step.depends_on:
        if status[dep] is StepStatus.SKIPPED:
            return f"step '{dep}', which it depends on, was skipped"
        if status[dep] is StepStatus.FAILED and not _tolerated(by_id[dep]):
            return f"step '{dep}', which it depends on, failed"
    return None


def _finish(
    run: MissionRun, status: dict[str, StepStatus], by_id: dict[str, PlannedStep]
) -> MissionFinished:
    failed = [
        step_id
        for step_id, s in status.items()
        if s is StepStatus.FAILED and not _tolerated(by_id[step_id])
    ]
    if run.cancel_reason is not None:
        outcome = "cancelled"
    elif failed:
        outcome = "failed"
    else:
        outcome = "succeeded"
    return MissionFinished(outcome=outcome, failed_steps=failed, outputs=mission_outputs(run))


def step_context(run: MissionRun, step: PlannedStep) -> RenderContext:
    """What the step's references resolve against."""
    outputs = {
        step_id: state.output
        for step_id, state in run.steps.items()
        if state.status in (StepStatus.SUCCEEDED, StepStatus.FAILED)
    }
    aliases = {s.id: s.outputs for s in run.plan.steps if s.outputs}
    return RenderContext(run.variables, outputs, aliases, tuple(step.depends_on))


def step_parameters(run: MissionRun, step_id: str) -> dict[str, Any]:
    """A step's parameters with every reference replaced by its value."""
    step = run.plan.step(step_id)
    rendered: dict[str, Any] = render(step.parameters, step_context(run, step))
    return rendered


def mission_outputs(run: MissionRun) -> dict[str, Any]:
    """The mission's declared outputs; an output whose step did not succeed is None."""
    context = step_context(run, run.plan.steps[0])
    result: dict[str, Any] = {}
    for name, template in run.plan.outputs.items():
        try:
            result[name] = render(template, context)
        except (KeyError, IndexError):
            result[name] = None
    return result


def step_succeeded(
    run: MissionRun, step_id: str, attempt: int, output: Any, duration_ms: int
) -> list[RunEvent]:
    """The fact of a successful attempt."""
    return [StepSucceeded(step_id=step_id, attempt=attempt, output=output, duration_ms=duration_ms)]


def step_failed(
    run: MissionRun, step_id: str, attempt: int, error: str, now: datetime, duration_ms: int = 0
) -> list[RunEvent]:
    """The fact of a failed attempt, with a retry time while attempts and the mission allow."""
    step = run.plan.step(step_id)
    state = run.step(step_id)
    retry_at = None
    by_id = {s.id: s for s in run.plan.steps}
    if state.failures + 1 < step.retry.max_attempts and _halted(run, by_id) is None:
        retry_at = now + timedelta(seconds=step.retry.backoff_seconds)
    return [
        StepFailed(
            step_id=step_id,
            attempt=attempt,
            error=error,
            retry_at=retry_at,
            duration_ms=duration_ms,
        )
    ]


def recover(run: MissionRun) -> list[RunEvent]:
    """After a crash: every attempt that started and did not finish is re-run or failed."""
    events: list[RunEvent] = []
    for step_id, state in run.steps.items():
        if state.status is StepStatus.RUNNING:
            idempotent = run.plan.step(step_id).retry.idempotent
            reason = IDEMPOTENT_INTERRUPTED if idempotent else NOT_IDEMPOTENT_INTERRUPTED
            events.append(
                StepInterrupted(
                    step_id=step_id, attempt=state.attempt, rerun=idempotent, reason=reason
                )
            )
    return events


def cancel(run: MissionRun, reason: str) -> list[RunEvent]:
    """Ask the run to stop: nothing new starts; running steps finish or are abandoned."""
    if run.finished or run.cancel_reason is not None:
        return []
    return [MissionCancelRequested(reason=reason)]


def next_wakeup(run: MissionRun) -> datetime | None:
    """The earliest time a waiting retry becomes due, if any."""
    times = [
        s.retry_at for s in run.steps.values() if s.status is StepStatus.PENDING and s.retry_at
    ]
    return min(times, default=None)
