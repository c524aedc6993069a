"""Drives the pure run decisions the way the executor does, with scripted step outcomes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rustchain.domain import run_decisions as decide
from rustchain.domain.events import EventDraft, EventEnvelope, seal_all
from rustchain.domain.mission_run import MissionRun
from rustchain.domain.plan import Plan
from rustchain.domain.run_events import RunEvent, StepStarted
from tests.unit.compile_helpers import compile_text

START = datetime(2026, 1, 1, tzinfo=UTC)

# Given a step id and its attempt number: an output, or an exception message to fail with.
Outcome = Callable[[str, int], Any]


def recorded_history(
    path: Path, edit: Callable[[list[dict[str, Any]]], None] | None = None
) -> list[EventEnvelope]:
    """A recorded history (JSON Lines of type, version, payload) as the store holds it: sealed
    events of one mission; `edit` may change the records first."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    if edit is not None:
        edit(records)
    drafts = [
        EventDraft(
            id=str(uuid.UUID(int=n)),
            tenant="replay",
            mission_id="recorded",
            service="executor",
            aggregate_id="recorded",
            aggregate_version=n,
            type=record["type"],
            version=record.get("version", 1),
            occurred_at=START,
            payload=record["payload"],
        )
        for n, record in enumerate(records, start=1)
    ]
    return seal_all(drafts, {})


class StepFailedError(Exception):
    """A scripted failure of a step attempt."""


def plan_of(text: str) -> Plan:
    """The plan of mission text that must be valid."""
    compilation = compile_text(text)
    assert compilation.plan is not None, [d.render() for d in compilation.diagnostics]
    return compilation.plan


class Simulation:
    """A run with a fake clock, recording every fact it produces."""

    def __init__(self, plan: Plan, variables: dict[str, Any] | None = None) -> None:
        self.history: list[RunEvent] = []
        self.progressed = False
        self.now = START
        self.max_running = 0
        self.rendered: dict[str, dict[str, Any]] = {}
        self.run = MissionRun.fold(self._record(decide.start_mission(plan, variables or {}, "ws")))

    def _record(self, events: list[RunEvent]) -> list[RunEvent]:
        self.history.extend(events)
        return events

    def apply(self, events: list[RunEvent]) -> list[RunEvent]:
        """Record facts and fold them into the run."""
        for event in self._record(events):
            self.run.apply(event)
        return events

    def step_once(self, outcome: Outcome, finish: bool = True) -> list[StepStarted]:
        """Start whatever is due; then finish every started attempt unless told not to."""
        decided = self.apply(decide.next_events(self.run, self.now))
        self.progressed = bool(decided)
        started = [e for e in decided if isinstance(e, StepStarted)]
        running = sum(1 for s in self.run.steps.values() if s.status.value == "running")
        self.max_running = max(self.max_running, running)
        if not finish:
            return started
        for event in started:
            if event.inputs is not None:
                # What the executor hands the runner: the inputs recorded in StepStarted.
                self.rendered[event.step_id] = event.inputs
            try:
                output = outcome(event.step_id, event.attempt)
            except StepFailedError as failure:
                self.apply(
                    decide.step_failed(
                        self.run, event.step_id, event.attempt, str(failure), self.now
                    )
                )
            else:
                self.apply(decide.step_succeeded(self.run, event.step_id, event.attempt, output, 1))
        return started

    def run_to_end(self, outcome: Outcome, limit: int = 10_000) -> MissionRun:
        """Drive the run until it finishes, advancing the clock to each due retry."""
        for _ in range(limit):
            if self.run.finished:
                return self.run
            self.step_once(outcome)
            if not self.progressed and not self.run.finished:
                wakeup = decide.next_wakeup(self.run)
                assert wakeup is not None, "a run with nothing due and nothing to wait for is stuck"
                self.now = max(self.now, wakeup)
                self.now += timedelta(microseconds=1)
        raise AssertionError("the run did not finish")
