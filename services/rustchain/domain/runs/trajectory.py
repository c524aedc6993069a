"""A finished mission as a trajectory: what each step was given, what it did, when, and the end.

The trainer turns the executor's facts into trajectories to judge and learn from; this fold is
pure, so replaying the same events always gives the same trajectory.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from rustchain.domain.events.envelope import EventEnvelope
from rustchain.domain.runs import run_decisions
from rustchain.domain.runs.mission_run import MissionRun
from rustchain.domain.runs.run_events import RUN_FACTS, StepStarted


class TrajectoryError(ValueError):
    """Events that do not make a finished mission."""


class TrajectoryStep(BaseModel):
    """One step of a trajectory."""

    model_config = ConfigDict(frozen=True)
    step_id: str
    step_type: str
    status: str
    attempts: int
    inputs: Any
    output: Any
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None


class Trajectory(BaseModel):
    """A finished mission, step by step."""

    model_config = ConfigDict(frozen=True)
    tenant: str
    mission_id: str
    mission_name: str
    plan_hash: str
    outcome: str
    started_at: datetime
    finished_at: datetime
    duration_ms: int
    steps: list[TrajectoryStep]
    outputs: dict[str, Any]


def _ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return int((end - start).total_seconds() * 1000)


def build_trajectory(events: Sequence[EventEnvelope]) -> Trajectory:
    """The trajectory of a finished mission from its executor events, in chain order.

    Each event is read as its current fact (upcast); CorruptHistoryError if one cannot be."""
    facts = [(r.stored, r.fact) for r in RUN_FACTS.read_all(events)]
    if not facts or facts[0][0].type != "MissionStarted":
        raise TrajectoryError("a trajectory needs the mission's events from MissionStarted on")
    run = MissionRun.fold(fact for _, fact in facts)
    if not run.finished:
        raise TrajectoryError(f"mission {facts[0][0].mission_id} has not finished")
    first_start: dict[str, datetime] = {}
    last_end: dict[str, datetime] = {}
    # What the runner of each step's last attempt was given, where the facts recorded it (v2).
    recorded_inputs: dict[str, Any] = {}
    for envelope, fact in facts:
        step_id = getattr(fact, "step_id", None)
        if step_id is None:
            continue
        if isinstance(fact, StepStarted):
            first_start.setdefault(step_id, envelope.occurred_at)
            if fact.inputs_recorded:
                recorded_inputs[step_id] = fact.inputs
        else:
            last_end[step_id] = envelope.occurred_at
    steps = []
    for planned in run.plan.steps:
        state = run.steps[planned.id]
        inputs: Any
        if planned.id in recorded_inputs:
            inputs = recorded_inputs[planned.id]
        else:
            # Facts of version 1 did not record them: rendered again from the recorded outputs.
            try:
                inputs = run_decisions.step_parameters(run, planned.id)
            except (KeyError, IndexError):
                inputs = None  # it referenced a step that never produced an output
        started, finished = first_start.get(planned.id), last_end.get(planned.id)
        steps.append(
            TrajectoryStep(
                step_id=planned.id,
                step_type=planned.step_type,
                status=state.status.value,
                attempts=state.attempt,
                inputs=inputs,
                output=state.output,
                error=state.error,
                started_at=started,
                finished_at=finished,
                duration_ms=_ms(started, finished),
            )
        )
    first, last = facts[0][0], facts[-1][0]
    return Trajectory(
        tenant=first.tenant,
        mission_id=first.mission_id,
        mission_name=run.plan.mission_name,
        plan_hash=run.plan_hash,
        outcome=run.outcome or "",
        started_at=first.occurred_at,
        finished_at=last.occurred_at,
        duration_ms=_ms(first.occurred_at, last.occurred_at) or 0,
        steps=steps,
        outputs=run.outputs,
    )
