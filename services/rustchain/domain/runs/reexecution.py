"""Deterministic re-execution: a run's plan re-rendered against its recorded facts, nothing run.

The recorded facts are folded in order; at each StepStarted the step's parameters are rendered
again with the current code, from exactly what the run held then (the recorded variables and the
recorded outputs of earlier steps), and compared with the inputs the runner was given. Any
difference is a divergence: the code renders differently now, or a recorded output or input was
changed after the fact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rustchain.domain.events.envelope import EventEnvelope
from rustchain.domain.plans.plan import Plan
from rustchain.domain.runs import run_decisions
from rustchain.domain.runs.audit import EXECUTOR
from rustchain.domain.runs.mission_run import MissionRun, RunTransitionError, StepStatus
from rustchain.domain.runs.run_events import RUN_FACTS, MissionStarted, RunEvent, StepStarted
from rustchain.domain.runs.tuned_policy import reapply_tuning

Renderer = Callable[[MissionRun, str], tuple[dict[str, Any] | None, str | None]]
"""Renders a step's inputs from a run: (inputs, None) or (None, why they cannot be rendered)."""

SAME = "same"
DIVERGED = "diverged"
NOT_RECORDED = "not recorded"


class _Absent:
    """A parameter present on one side of a comparison only."""

    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class Divergence:
    """One parameter of one attempt whose recorded value differs from the value rendered now."""

    step_id: str
    attempt: int
    path: str
    recorded: Any
    now: Any

    def describe(self, width: int = 80) -> str:
        """One line: the step, the attempt, the parameter, both values."""
        where = self.path or "(all parameters)"
        return (
            f"step '{self.step_id}' attempt {self.attempt}, {where}: recorded"
            f" {_short(self.recorded, width)}, now {_short(self.now, width)}"
        )


def _short(value: Any, width: int) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass(frozen=True)
class AttemptCheck:
    """One recorded attempt: its inputs compared with a re-rendering (or not recorded)."""

    step_id: str
    attempt: int
    status: str
    divergences: tuple[Divergence, ...] = ()


@dataclass(frozen=True)
class StepCheck:
    """One step of the plan, in plan order: its attempts, or why it never started."""

    step_id: str
    attempts: tuple[AttemptCheck, ...]
    never_started: str | None = None


@dataclass
class Reexecution:
    """What re-executing a run found."""

    plan_hash: str
    steps: list[StepCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Why (part of) the history could not be re-executed, or its plan reads differently now."""

    @property
    def divergences(self) -> list[Divergence]:
        """Every divergence, in plan order."""
        return [d for s in self.steps for a in s.attempts for d in a.divergences]

    @property
    def attempts(self) -> list[AttemptCheck]:
        """Every attempt checked, in plan order."""
        return [a for s in self.steps for a in s.attempts]

    @property
    def agrees(self) -> bool:
        """True when every recorded input is rendered the same now and nothing stood in the way."""
        return not self.problems and not self.divergences


def differences(recorded: Any, now: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Each leaf where two JSON values differ, with its path (`args[1]`, `headers.accept`)."""
    if isinstance(recorded, dict) and isinstance(now, dict):
        found: list[tuple[str, Any, Any]] = []
        for key in [*recorded, *(k for k in now if k not in recorded)]:
            inner = f"{path}.{key}" if path else str(key)
            found += differences(recorded.get(key, ABSENT), now.get(key, ABSENT), inner)
        return found
    if isinstance(recorded, list) and isinstance(now, list) and len(recorded) == len(now):
        return [
            d
            for i, pair in enumerate(zip(recorded, now, strict=True))
            for d in differences(*pair, f"{path}[{i}]")
        ]
    if type(recorded) is type(now) and recorded == now:
        return []
    return [(path, recorded, now)]


def _unrendered(error: str) -> str:
    return f"<not rendered: {error}>"


def _check_attempt(run: MissionRun, started: StepStarted, renderer: Renderer) -> AttemptCheck:
    step_id, attempt = started.step_id, started.attempt
    if not started.inputs_recorded:
        return AttemptCheck(step_id, attempt, NOT_RECORDED)
    inputs, error = renderer(run, step_id)
    recorded: Any = (
        started.inputs if started.inputs is not None else _unrendered(str(started.input_error))
    )
    if inputs is not None:
        # The learned policy's settings were recorded with the attempt; they are part of it.
        inputs = reapply_tuning(inputs, started.tuning)
    now: Any = inputs if inputs is not None else _unrendered(str(error))
    found = tuple(
        Divergence(step_id, attempt, path, before, after)
        for path, before, after in differences(recorded, now)
    )
    return AttemptCheck(step_id, attempt, DIVERGED if found else SAME, found)


def _never_started(run: MissionRun, step_id: str) -> str:
    state = run.steps[step_id]
    if state.status is StepStatus.SKIPPED:
        return f"skipped: {state.reason}"
    if run.finished:
        return "the mission ended without starting it"
    return "the mission has not reached it"


def reexecute(facts: Sequence[RunEvent], renderer: Renderer | None = None) -> Reexecution:
    """Re-render every recorded attempt's inputs from the facts before it; nothing is run."""
    render = renderer or run_decisions.rendered_inputs
    first = facts[0] if facts else None
    if not isinstance(first, MissionStarted):
        return Reexecution("", problems=["the history does not begin with MissionStarted"])
    report = Reexecution(first.plan_hash)
    run = MissionRun.start(first)
    now_hash = Plan.model_validate(first.plan).content_hash
    if now_hash != first.plan_hash:
        report.problems.append(
            f"the recorded plan hashes to {now_hash} with the current code, not to the recorded"
            f" {first.plan_hash}"
        )
    checked: dict[str, list[AttemptCheck]] = {step_id: [] for step_id in run.steps}
    for position, fact in enumerate(facts[1:], start=2):
        if isinstance(fact, StepStarted) and fact.step_id in checked:
            checked[fact.step_id].append(_check_attempt(run, fact, render))
        try:
            run.apply(fact)
        except RunTransitionError as error:
            report.problems.append(
                f"fact {position} ({fact.type}) cannot follow the ones before"
                f" it: {error}; re-execution stopped there"
            )
            break
    for step_id in sorted(run.steps, key=run.order.__getitem__):
        attempts = tuple(checked[step_id])
        never = None if attempts else _never_started(run, step_id)
        report.steps.append(StepCheck(step_id, attempts, never))
    return report


def run_facts(events: Iterable[EventEnvelope]) -> list[RunEvent]:
    """The executor's facts among a mission's events, in chain order, as their current versions."""
    executor = sorted((e for e in events if e.service == EXECUTOR), key=lambda e: e.sequence)
    return [recorded.fact for recorded in RUN_FACTS.read_all(executor)]
