"""What a mission run does next: pure decisions that return the facts to record.

The executor records what these return and runs the steps they start; after a crash it folds the
stored facts back into a MissionRun and calls `recover`, so live running and resuming share code.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic_core import to_jsonable_python

from rustchain.domain.events.size import (
    DEFAULT_MAX_EVENT_BYTES,
    bounded_error,
    bounded_outputs,
    over_limit,
    payload_bytes,
)
from rustchain.domain.language.secret_refs import secret_names
from rustchain.domain.plans.bindings import RenderContext, render
from rustchain.domain.plans.plan import Plan, PlannedStep
from rustchain.domain.runs.mission_run import MissionRun, StepStatus
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
)

DEFAULT_MAX_PARALLEL_STEPS = 4
NOT_IDEMPOTENT_INTERRUPTED = (
    "the executor stopped while this step was running; the step is not marked idempotent "
    "(retry.idempotent), so it is not run again: it may or may not have taken effect"
)
IDEMPOTENT_INTERRUPTED = "the executor stopped while this step was running; it is idempotent"
RENDER_ERRORS = (KeyError, IndexError, TypeError, ValueError)
"""What rendering raises when a reference names a value the run does not hold."""


def start_mission(
    plan: Plan, variables: dict[str, Any], workspace: str, secret_salt: str = ""
) -> list[RunEvent]:
    """The first fact of a run; the salt is recorded only when the plan uses a secret."""
    uses_secrets = any(secret_names(step.parameters) for step in plan.steps)
    return [
        MissionStarted(
            plan=plan.model_dump(mode="json"),
            plan_hash=plan.content_hash,
            variables=variables,
            workspace=workspace,
            secret_salt=secret_salt if uses_secrets else "",
        )
    ]


def _halted(run: MissionRun) -> str | None:
    if run.cancel_reason is not None:
        return f"the mission was cancelled: {run.cancel_reason}"
    if run.plan.config.fail_fast is not False and run.failed_untolerated:
        return f"fail_fast: step '{run.failed_untolerated[0]}' failed"
    return None


def next_events(
    run: MissionRun, now: datetime, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
) -> list[RunEvent]:
    """Skips, starts up to the parallelism limit, or the mission's end: whatever is due now.

    Only steps whose dependencies have all finished are looked at (the run keeps them as
    candidates); a skip releases its dependents, which the next call looks at.
    """
    if run.finished:
        return []
    events: list[RunEvent] = []
    halted = _halted(run)
    if halted is not None:
        pending = [s for s, state in run.steps.items() if state.status is StepStatus.PENDING]
        events += [
            StepSkipped(step_id=s, reason=halted)
            for s in sorted(pending, key=run.order.__getitem__)
        ]
    else:
        free = (run.plan.config.max_parallel_steps or DEFAULT_MAX_PARALLEL_STEPS) - run.running
        for step_id in sorted(run.candidates, key=run.order.__getitem__):
            reason = _blocked_by(run, run.plan.step(step_id))
            if reason is not None:
                events.append(StepSkipped(step_id=step_id, reason=reason))
                continue
            state = run.steps[step_id]
            if free > 0 and (state.retry_at is None or state.retry_at <= now):
                events.append(start_step(run, step_id, state.attempt + 1, max_event_bytes))
                free -= 1
    if run.finished_steps + sum(isinstance(e, StepSkipped) for e in events) == len(run.steps):
        events.append(_finish(run, max_event_bytes))
    return events


def _blocked_by(run: MissionRun, step: PlannedStep) -> str | None:
    for dep in step.depends_on:
        status = run.steps[dep].status
        if status is StepStatus.SKIPPED:
            return f"step '{dep}', which it depends on, was skipped"
        if status is StepStatus.FAILED and not run.plan.step(dep).continue_on_error:
            return f"step '{dep}', which it depends on, failed"
    return None


def _finish(run: MissionRun, max_event_bytes: int) -> MissionFinished:
    if run.cancel_reason is not None:
        outcome = "cancelled"
    elif run.failed_untolerated:
        outcome = "failed"
    else:
        outcome = "succeeded"
    outputs = bounded_outputs(mission_outputs(run), max_event_bytes)
    return MissionFinished(
        outcome=outcome, failed_steps=list(run.failed_untolerated), outputs=outputs
    )


class _Outputs(Mapping[str, Any]):
    """The outputs of a run's finished steps, read on demand (a view, not a copy)."""

    def __init__(self, run: MissionRun) -> None:
        self._steps = run.steps

    def __getitem__(self, step_id: str) -> Any:
        state = self._steps[step_id]
        if state.status not in (StepStatus.SUCCEEDED, StepStatus.FAILED):
            raise KeyError(step_id)
        return state.output

    def __contains__(self, step_id: object) -> bool:
        state = self._steps.get(step_id) if isinstance(step_id, str) else None
        return state is not None and state.status in (StepStatus.SUCCEEDED, StepStatus.FAILED)

    def __iter__(self) -> Iterator[str]:
        return (step_id for step_id in self._steps if step_id in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def step_context(run: MissionRun, step: PlannedStep) -> RenderContext:
    """What the step's references resolve against."""
    return RenderContext(
        run.variables, _Outputs(run), run.plan.output_aliases, tuple(step.depends_on)
    )


def step_parameters(run: MissionRun, step_id: str) -> dict[str, Any]:
    """A step's parameters with every reference replaced by its value."""
    step = run.plan.step(step_id)
    rendered: dict[str, Any] = render(step.parameters, step_context(run, step))
    return rendered


def rendered_inputs(run: MissionRun, step_id: str) -> tuple[dict[str, Any] | None, str | None]:
    """A step's parameters as JSON-ready values, or why they cannot be rendered from this run."""
    try:
        inputs: dict[str, Any] = to_jsonable_python(step_parameters(run, step_id))
    except RENDER_ERRORS as error:
        return None, f"{type(error).__name__}: {error}"
    return inputs, None


def start_step(
    run: MissionRun, step_id: str, attempt: int, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
) -> StepStarted:
    """The start of an attempt, with the parameters its runner will be given.

    They are rendered now, from the outputs the run holds when the attempt is released: these are
    exactly the values the runner receives, recorded before it runs, so an audit can re-render
    them and compare. Inputs too large to record are not recorded, and the step does not run.
    """
    inputs, error = rendered_inputs(run, step_id)
    size = payload_bytes(inputs)
    if inputs is not None and size > max_event_bytes:
        inputs, error = None, over_limit("the rendering of its inputs", size, max_event_bytes)
    return StepStarted(step_id=step_id, attempt=attempt, inputs=inputs, input_error=error)


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


def step_finished(
    run: MissionRun,
    step_id: str,
    attempt: int,
    output: Any,
    now: datetime,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> list[RunEvent]:
    """A runner's output as a success, or as a failure when it is too large to record."""
    size = payload_bytes(output)
    if size > max_event_bytes:
        error = over_limit("its output", size, max_event_bytes)
        return step_failed(run, step_id, attempt, error, now, max_event_bytes=max_event_bytes)
    return step_succeeded(run, step_id, attempt, output, 0)


def step_failed(
    run: MissionRun,
    step_id: str,
    attempt: int,
    error: str,
    now: datetime,
    duration_ms: int = 0,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> list[RunEvent]:
    """The fact of a failed attempt, with a retry time while attempts and the mission allow.

    An error text too large to record is replaced by a message saying so, with a marked excerpt.
    """
    error = bounded_error(error, payload_bytes(error), max_event_bytes)
    step = run.plan.step(step_id)
    state = run.step(step_id)
    retry_at = None
    # A learned policy may have set the attempt's retry (recorded in its StepStarted).
    retry = state.retry or step.retry
    if state.failures + 1 < retry.max_attempts and _halted(run) is None:
        retry_at = now + timedelta(seconds=retry.backoff_seconds)
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
