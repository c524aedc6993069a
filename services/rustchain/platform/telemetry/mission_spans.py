"""A mission's spans, built from its recorded facts so that a resumed mission keeps its trace.

The record carries the context: `MissionStarted` keeps the traceparent of the call that started
it (the StartMission server span); the mission's own span (`invoke_workflow`) has an id derived
from that traceparent and the mission id, so every executor that resumes it derives the same one;
each step attempt gets a fresh span id in its `StepStarted`, and its result names the same span.
Spans are emitted when the fact that ends them is committed (never while a history is read
back), with the start and end times the facts recorded. Outside tracing every traceparent is None.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from opentelemetry import trace
from opentelemetry.context import attach, detach
from opentelemetry.util.types import AttributeValue

from rustchain.domain.events.envelope import EventEnvelope
from rustchain.domain.runs.run_events import (
    RUN_EVENT_TYPES,
    MissionFinished,
    MissionStarted,
    RunEvent,
    StepFailed,
    StepInterrupted,
    StepStarted,
    StepSucceeded,
    run_fact,
)
from rustchain.platform.telemetry.instruments import instruments
from rustchain.platform.telemetry.trace_context import (
    context_of,
    current_traceparent,
    derived_span_id,
    emit_span,
    random_span_id,
    span_id_of,
    with_span_id,
)

MissionEvents = Callable[[str, str], list[EventEnvelope]]
AttemptKey = tuple[str, int]
_ENDS_ATTEMPT = (StepSucceeded, StepFailed, StepInterrupted)


@dataclass
class _MissionTrace:
    """What a mission's spans need from its history."""

    tenant: str
    started_by: str | None = None  # the traceparent MissionStarted was written under
    workflow: str | None = None  # the traceparent of the mission's own span
    started_at: datetime | None = None
    name: str = ""
    step_types: dict[str, str] = field(default_factory=dict)
    attempts: dict[AttemptKey, tuple[str | None, datetime | None]] = field(default_factory=dict)
    # Attempts this process started (and counts as running); the others began before a restart.
    running: set[AttemptKey] = field(default_factory=set)


def workflow_traceparent(started_by: str | None, mission_id: str) -> str | None:
    """The traceparent of a mission's span, derived alike by every executor that drives it."""
    if started_by is None:
        return None
    return with_span_id(started_by, derived_span_id(started_by, mission_id))


class MissionSpans:
    """Traceparents for the facts the executor records, and the spans their commits end."""

    def __init__(self, mission_events: MissionEvents, tracer: trace.Tracer | None = None) -> None:
        self._mission_events = mission_events
        self._tracer = tracer or trace.get_tracer("rustchain.executor")
        self._missions: dict[tuple[str, str], _MissionTrace] = {}

    def traceparents(
        self, tenant: str, mission_id: str, events: Sequence[RunEvent]
    ) -> list[str | None]:
        """The traceparent each fact is recorded with (before the commit)."""
        first = events[0] if events else None
        if isinstance(first, MissionStarted):
            started_by = current_traceparent()
            mission = _MissionTrace(
                tenant, started_by, workflow_traceparent(started_by, mission_id)
            )
            self._missions[(tenant, mission_id)] = mission
        else:
            mission = self._mission(tenant, mission_id)
        found: list[str | None] = []
        for event in events:
            if isinstance(event, MissionStarted):
                found.append(mission.started_by)
            elif isinstance(event, StepStarted):
                parent = mission.workflow
                tp = None if parent is None else with_span_id(parent, random_span_id())
                mission.attempts[(event.step_id, event.attempt)] = (tp, None)
                found.append(tp)
            elif isinstance(event, _ENDS_ATTEMPT):
                found.append(mission.attempts.get((event.step_id, event.attempt), (None, None))[0])
            else:
                found.append(mission.workflow)
        return found

    @contextmanager
    def attempt_scope(self, tenant: str, mission_id: str, started: StepStarted) -> Iterator[None]:
        """Make the attempt's span current while the block runs (a task started in it keeps it)."""
        mission = self._missions.get((tenant, mission_id))
        attempt = (started.step_id, started.attempt)
        context = None if mission is None else context_of(mission.attempts.get(attempt, (None,))[0])
        if context is None:
            yield
            return
        token = attach(context)
        try:
            yield
        finally:
            detach(token)

    def recorded(self, stored: Sequence[EventEnvelope], facts: Sequence[RunEvent]) -> None:
        """Emit the spans and metrics that the committed facts (and their envelopes) end."""
        for envelope, fact in zip(stored, facts, strict=True):
            key = (envelope.tenant, envelope.mission_id)
            mission = self._missions.get(key)
            if mission is None:
                continue
            if isinstance(fact, MissionStarted):
                _learn(mission, envelope, fact)
                instruments().missions_started.add(1, {"tenant": envelope.tenant})
                instruments().missions_running.add(1, {"tenant": envelope.tenant})
            elif isinstance(fact, StepStarted):
                _learn(mission, envelope, fact)
                mission.running.add((fact.step_id, fact.attempt))
                instruments().steps_running.add(1, {"tenant": envelope.tenant})
            elif isinstance(fact, _ENDS_ATTEMPT):
                self._attempt_ended(mission, envelope, fact)
            elif isinstance(fact, MissionFinished):
                self._mission_ended(mission, envelope, fact)
                del self._missions[key]

    def _mission(self, tenant: str, mission_id: str) -> _MissionTrace:
        known = self._missions.get((tenant, mission_id))
        if known is not None:
            return known
        # A mission this process did not start (resumed after a restart, or cancelled): its
        # context comes from its history, read once; nothing is emitted for what it held.
        mission = _MissionTrace(tenant)
        finished = False
        for envelope in self._mission_events(tenant, mission_id):
            if envelope.type in RUN_EVENT_TYPES:
                fact = run_fact(envelope)
                _learn(mission, envelope, fact)
                finished = finished or isinstance(fact, MissionFinished)
        if not finished:
            # Running here now: the process that counted it is gone.
            instruments().missions_running.add(1, {"tenant": tenant})
        self._missions[(tenant, mission_id)] = mission
        return mission

    def _attempt_ended(
        self,
        mission: _MissionTrace,
        envelope: EventEnvelope,
        fact: StepSucceeded | StepFailed | StepInterrupted,
    ) -> None:
        step_type = mission.step_types.get(fact.step_id, "unknown")
        traceparent, started_at = mission.attempts.pop((fact.step_id, fact.attempt), (None, None))
        outcome = "succeeded" if isinstance(fact, StepSucceeded) else "failed"
        error = fact.error if isinstance(fact, StepFailed) else None
        if isinstance(fact, StepInterrupted):
            outcome, error = "interrupted", fact.reason
        if (fact.step_id, fact.attempt) in mission.running:
            mission.running.discard((fact.step_id, fact.attempt))
            instruments().steps_running.add(-1, {"tenant": envelope.tenant})
        if started_at is not None:
            seconds = (envelope.occurred_at - started_at).total_seconds()
            instruments().step_duration.record(
                max(seconds, 0.0), {"step_type": step_type, "outcome": outcome}
            )
        if traceparent is None or started_at is None:
            return
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": step_type,
            "gen_ai.tool.type": "function",
            "gen_ai.tool.call.id": f"{fact.step_id}#{fact.attempt}",
            "rustchain.tenant": envelope.tenant,
            "rustchain.mission.id": envelope.mission_id,
            "rustchain.step.id": fact.step_id,
            "rustchain.step.attempt": fact.attempt,
            "rustchain.step.outcome": outcome,
        }
        emit_span(
            self._tracer,
            f"execute_tool {step_type}",
            mission.workflow,
            span_id_of(traceparent),
            started_at,
            envelope.occurred_at,
            attributes,
            error,
        )

    def _mission_ended(
        self, mission: _MissionTrace, envelope: EventEnvelope, fact: MissionFinished
    ) -> None:
        labels = {"tenant": envelope.tenant, "outcome": fact.outcome}
        instruments().missions_finished.add(1, labels)
        instruments().missions_running.add(-1, {"tenant": envelope.tenant})
        if mission.workflow is None or mission.started_at is None:
            return
        error = None if fact.outcome == "succeeded" else f"mission {fact.outcome}"
        emit_span(
            self._tracer,
            f"invoke_workflow {mission.name}".strip(),
            mission.started_by,
            span_id_of(mission.workflow),
            mission.started_at,
            envelope.occurred_at,
            {
                "gen_ai.operation.name": "invoke_workflow",
                "gen_ai.workflow.name": mission.name,
                "rustchain.tenant": envelope.tenant,
                "rustchain.mission.id": envelope.mission_id,
                "rustchain.mission.outcome": fact.outcome,
            },
            error,
        )


def _learn(mission: _MissionTrace, envelope: EventEnvelope, fact: RunEvent) -> None:
    """Take what the spans need from one recorded fact."""
    if isinstance(fact, MissionStarted):
        mission.started_by = envelope.traceparent
        mission.workflow = workflow_traceparent(envelope.traceparent, envelope.mission_id)
        mission.started_at = envelope.occurred_at
        mission.name = str(fact.plan.get("mission_name", ""))
        for step in fact.plan.get("steps", []):
            mission.step_types[str(step.get("id"))] = str(step.get("step_type"))
    elif isinstance(fact, StepStarted):
        mission.attempts[(fact.step_id, fact.attempt)] = (
            envelope.traceparent,
            envelope.occurred_at,
        )
    elif isinstance(fact, _ENDS_ATTEMPT):
        mission.attempts.pop((fact.step_id, fact.attempt), None)
