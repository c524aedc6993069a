"""What an auditor proves of a history: every chain whole, every run verified before it ran.

Each service chains its own events of a mission (the executor's facts, the verifier's verdict),
so a history is checked chain by chain: (tenant, mission, service).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from rustchain.domain.errors import CorruptHistoryError
from rustchain.domain.events.chain import verify_chain
from rustchain.domain.events.envelope import EventEnvelope
from rustchain.domain.events.verification_events import VERIFICATION_FACTS, VERIFIER, PlanVerified
from rustchain.domain.plans.artifacts import ArtifactRef
from rustchain.domain.runs.facts import FACTS, Fact
from rustchain.domain.runs.run_events import (
    RUN_FACTS,
    MissionCancelRequested,
    MissionFinished,
    MissionStarted,
    StepFailed,
    StepInterrupted,
    StepSkipped,
    StepStarted,
    StepSucceeded,
    WorkspaceNotSaved,
    WorkspaceSaved,
)

ChainKey = tuple[str, str, str]
EXECUTOR = "executor"
MISSION_STARTED = RUN_FACTS.type_of(MissionStarted)
STEP_STARTED = RUN_FACTS.type_of(StepStarted)


@dataclass(frozen=True)
class AuditFinding:
    """One thing wrong with a history, located."""

    tenant: str
    mission_id: str
    problem: str

    def describe(self) -> str:
        """One line: which mission, what is wrong."""
        return f"{self.tenant}/{self.mission_id}: {self.problem}"


def chains(events: Iterable[EventEnvelope]) -> dict[ChainKey, list[EventEnvelope]]:
    """The events of each chain, in the order given."""
    grouped: dict[ChainKey, list[EventEnvelope]] = {}
    for event in events:
        grouped.setdefault((event.tenant, event.mission_id, event.service), []).append(event)
    return grouped


def verify_history(events: Sequence[EventEnvelope]) -> list[AuditFinding]:
    """Every chain whole and untouched, and every run proven SAFE before its first step.

    Chains are verified on events as stored; whether a run was verified is read from the facts it
    depends on (upcast), so that one of them that cannot be read is a finding too."""
    findings: list[AuditFinding] = []
    grouped = chains(events)
    for (tenant, mission, service), chain in grouped.items():
        broken = verify_chain(chain)
        if broken is not None:
            findings.append(AuditFinding(tenant, mission, f"{service} chain: {broken.describe()}"))
    for (tenant, mission, service), chain in grouped.items():
        if service != EXECUTOR:
            continue
        verifier = grouped.get((tenant, mission, VERIFIER), [])
        try:
            problem = _verified_before_run(chain, verifier)
        except CorruptHistoryError as error:
            problem = f"a fact cannot be read: {error}"
        if problem is not None:
            findings.append(AuditFinding(tenant, mission, problem))
    return findings


def _verified_before_run(
    executor: list[EventEnvelope], verifier: list[EventEnvelope]
) -> str | None:
    """Read, as facts, only what the rule needs: the run's start, its first step, the verdicts."""
    started = next((e for e in executor if e.type == MISSION_STARTED), None)
    first_step = next((e for e in executor if e.type == STEP_STARTED), None)
    if started is None or first_step is None:
        return None
    start = RUN_FACTS.read_as(started, MissionStarted)
    RUN_FACTS.read_as(first_step, StepStarted)
    verdicts = VERIFICATION_FACTS.read_all(verifier)
    safe = [r for r in verdicts if r.fact.safe and r.fact.plan_hash == start.plan_hash]
    if not safe:
        return f"ran without a SAFE verdict for its plan {start.plan_hash} (no PlanVerified event)"
    if min(r.occurred_at for r in safe) > first_step.occurred_at:
        return "its SAFE verdict was recorded after its first step started"
    return None


@dataclass(frozen=True)
class TimelineEntry:
    """One fact of a mission, as an auditor reads it."""

    at: datetime
    service: str
    type: str
    step_id: str | None
    detail: str


def _detail(fact: Fact) -> str:
    match fact:
        case PlanVerified():
            return (
                f"verdict {fact.status.value} under policy {fact.policy_name} "
                f"(policy hash {fact.policy_hash[:12]}, plan hash {fact.plan_hash[:12]})"
            )
        case MissionStarted():
            return f"plan hash {fact.plan_hash[:12]}, variables {fact.variables}"
        case StepStarted(input_error=str(error)):
            return f"attempt {fact.attempt}: inputs not rendered: {error}"
        case StepStarted(inputs=dict(inputs)):
            shown = json.dumps(inputs, sort_keys=True, ensure_ascii=False)
            return f"attempt {fact.attempt}: inputs {shown[:120]}"
        case StepStarted():
            return f"attempt {fact.attempt}"
        case StepSucceeded():
            ref = ArtifactRef.of_value(fact.output)
            output = repr(fact.output) if ref is None else f"artifact {ref.sha256}"
            return f"attempt {fact.attempt}: output {output[:120]}"
        case StepFailed():
            retry = f", retry at {fact.retry_at.isoformat()}" if fact.retry_at else ""
            return f"attempt {fact.attempt}: {fact.error}{retry}"
        case StepSkipped() | StepInterrupted() | MissionCancelRequested():
            return fact.reason
        case MissionFinished():
            return f"{fact.outcome}; failed steps {fact.failed_steps}"
        case WorkspaceSaved():
            return (
                f"after {fact.after_step}: {fact.files} files, {fact.ref.size:,} bytes,"
                f" artifact {fact.ref.sha256}"
            )
        case WorkspaceNotSaved():
            return f"after {fact.after_step}: {fact.reason}"


def timeline(events: Iterable[EventEnvelope]) -> list[TimelineEntry]:
    """A mission's facts from every service, in time order, each read as its current version:
    replayed, never re-run. An event of a type this code does not know is listed bare.

    Raises CorruptHistoryError when a known fact cannot be read."""
    ordered = sorted(events, key=lambda e: (e.occurred_at, e.service, e.sequence))
    entries = []
    for event in ordered:
        if event.type not in FACTS:
            entries.append(TimelineEntry(event.occurred_at, event.service, event.type, None, ""))
            continue
        fact = FACTS.read(event).fact
        step_id = getattr(fact, "step_id", None)
        entries.append(
            TimelineEntry(event.occurred_at, event.service, event.type, step_id, _detail(fact))
        )
    return entries
