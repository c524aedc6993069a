"""Recorded histories, and runs replayed through the real ExecutorApplication.

As temporal's replayer runs recorded histories through the real workflow code, `Replay` drives a
mission with the executor application the bootstrap builds (recover, quotas, the inbox, the one
append per step), on an in-memory event store. Only the edges are doubles: step runners that
answer with scripted or recorded outcomes, and a clock that jumps to each due retry instead of
waiting for it.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from rustchain.bootstrap.executor import build_executor
from rustchain.domain.events.envelope import EventDraft, EventEnvelope, seal_all
from rustchain.domain.language.step_types import StepTypeRegistry
from rustchain.domain.plans.plan import Plan
from rustchain.domain.runs.mission_run import MissionRun, StepStatus
from rustchain.domain.runs.run_events import (
    RUN_EVENT_TYPES,
    RunEvent,
    StepFailed,
    StepStarted,
    StepSucceeded,
    run_fact,
)
from rustchain.executor.application import ExecutorApplication
from rustchain.executor.driver import MissionDriver
from rustchain.platform.storage.event_store import EventStore, in_memory_event_store
from rustchain.steps.support.runtime import StepContext, StepRunError
from tests.unit.compile_helpers import REGISTRY

START = datetime(2026, 1, 1, tzinfo=UTC)
TENANT = "replay"
MISSION_ID = "recorded"
REPLAY_TIMEOUT_SECONDS = 30.0

Outcome = Callable[[str, int], Any]
"""Given a step id and its attempt number: an output, or raise StepFailedError to fail it."""


class StepFailedError(StepRunError):
    """A scripted failure of a step attempt."""


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
            tenant=TENANT,
            mission_id=MISSION_ID,
            service="executor",
            aggregate_id=MISSION_ID,
            aggregate_version=n,
            type=record["type"],
            version=record.get("version", 1),
            occurred_at=START,
            payload=record["payload"],
        )
        for n, record in enumerate(records, start=1)
    ]
    return seal_all(drafts, {})


def recorded_outcomes(history: list[RunEvent]) -> Outcome:
    """The outcome of each attempt as the history recorded it: what a replay's runners answer."""
    results: dict[tuple[str, int], StepSucceeded | StepFailed] = {
        (e.step_id, e.attempt): e for e in history if isinstance(e, StepSucceeded | StepFailed)
    }

    def outcome(step_id: str, attempt: int) -> Any:
        result = results.get((step_id, attempt))
        if result is None:
            raise AssertionError(f"the history records no result of {step_id} attempt {attempt}")
        if isinstance(result, StepFailed):
            raise StepFailedError(result.error)
        return result.output

    return outcome


class FakeClock:
    """Time that stands still until the executor waits, then jumps to the end of the wait."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        """The current (fake) time."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Advance by `seconds` at once (a retry's backoff costs the test nothing)."""
        self.now += timedelta(seconds=seconds)
        await asyncio.sleep(0)


class AnyParameters(BaseModel):
    """Whatever parameters a step was rendered with, kept as given."""

    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class ScriptedStepType:
    """A step type of the real registry whose runner answers from a script, not the world."""

    name: str
    summary: str
    runners: ScriptedRunners
    parameters: type[BaseModel] = AnyParameters

    async def run(self, params: BaseModel, context: StepContext) -> Any:
        """The scripted outcome of this attempt, or wait forever when the step is held."""
        return await self.runners.answer(context.step_id, params.model_dump())


@dataclass
class ScriptedRunners:
    """The recorded-runner double: every step type answers with `outcome`; a held step starts
    and never finishes (the process dies while it runs)."""

    outcome: Outcome
    held: frozenset[str] = frozenset()
    # The parameters each step's runner was handed, at its last attempt.
    given: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Attempts per step, counted as the executor numbers them (a replay shares one count across
    # its executors, so an attempt re-run after a crash is the second).
    attempts: dict[str, int] = field(default_factory=dict)
    all_held: asyncio.Event | None = None

    def registry(self) -> StepTypeRegistry:
        """The real registry's step types, each with this double as its runner."""
        return StepTypeRegistry.of(
            [ScriptedStepType(n, "scripted", self) for n in REGISTRY.names], {}
        )

    async def answer(self, step_id: str, params: dict[str, Any]) -> Any:
        """Record what the runner was given, then answer (or hold)."""
        self.given[step_id] = params
        self.attempts[step_id] = self.attempts.get(step_id, 0) + 1
        if step_id in self.held:
            if self.all_held is not None and self.held <= set(self.given):
                self.all_held.set()
            await asyncio.Event().wait()
        return self.outcome(step_id, self.attempts[step_id])


class Replay:
    """One mission on the real executor application; each drive is a new executor process on the
    same store, so a crash between drives is resumed the way a restarted executor resumes."""

    def __init__(
        self,
        plan: Plan,
        variables: dict[str, Any] | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.plan = plan
        # Settings the executors are built with, beside their home (workspace snapshots).
        self.environ = dict(environ or {})
        self.store: EventStore = in_memory_event_store()
        self.clock = FakeClock()
        self.commits: list[list[RunEvent]] = []
        self.given: dict[str, dict[str, Any]] = {}
        self.attempts: dict[str, int] = {}
        self._folder = tempfile.TemporaryDirectory(prefix="rustchain-replay-")
        self.application = self._executor(ScriptedRunners(_never))
        self.application.start(TENANT, plan, variables or {}, MISSION_ID)

    def _executor(self, runners: ScriptedRunners) -> ExecutorApplication:
        home = Path(self._folder.name)
        application = build_executor(
            {"RUSTCHAIN_HOME": str(home), **self.environ},
            self.store,
            registry=runners.registry(),
            workspaces=home / "workspaces",
            clock=self.clock,
            sleep=self.clock.sleep,
        )
        application.subscribe(lambda run, facts: self.commits.append(list(facts)))
        return application

    def run_to_end(self, outcome: Outcome) -> MissionRun:
        """Drive the mission to its end (resuming whatever an earlier drive left running)."""
        runners = ScriptedRunners(outcome, attempts=self.attempts)
        self.application = self._executor(runners)
        try:
            return asyncio.run(self._drive(runners))
        finally:
            self.given.update(runners.given)

    async def _drive(self, runners: ScriptedRunners) -> MissionRun:
        driver = MissionDriver(self.application)
        driver.resume_unfinished()
        return await asyncio.wait_for(driver.finished(TENANT, MISSION_ID), REPLAY_TIMEOUT_SECONDS)

    def crash_while_running(self, outcome: Outcome, held: set[str]) -> None:
        """Drive until every held step has started, then stop as a killed process would: the
        held attempts never report, and nothing more is recorded."""
        runners = ScriptedRunners(outcome, frozenset(held), attempts=self.attempts)
        self.application = self._executor(runners)
        asyncio.run(self._crash(runners))
        self.given.update(runners.given)

    async def _crash(self, runners: ScriptedRunners) -> None:
        runners.all_held = asyncio.Event()
        driver = MissionDriver(self.application)
        driver.resume_unfinished()
        await asyncio.wait_for(runners.all_held.wait(), REPLAY_TIMEOUT_SECONDS)
        await driver.stop()

    @property
    def history(self) -> list[RunEvent]:
        """Every fact the store holds for the mission, read back (upcast) as the executor reads."""
        envelopes = self.store.mission_events(TENANT, MISSION_ID)
        return [run_fact(e) for e in envelopes if e.type in RUN_EVENT_TYPES]

    @property
    def run(self) -> MissionRun:
        """The run folded from the store."""
        return MissionRun.fold(self.history)


def _never(step_id: str, attempt: int) -> Any:
    raise AssertionError(f"{step_id} ran before the mission was driven")


def max_running(history: list[RunEvent]) -> int:
    """The most attempts the history shows running at once."""
    run = MissionRun.fold(history[:1])
    most = 0
    for event in history[1:]:
        run.apply(event)
        most = max(most, sum(s.status is StepStatus.RUNNING for s in run.steps.values()))
    return most


def started(history: list[RunEvent]) -> list[tuple[str, int]]:
    """(step id, attempt) of every start, in order."""
    return [(e.step_id, e.attempt) for e in history if isinstance(e, StepStarted)]
