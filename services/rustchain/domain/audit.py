"""What an auditor proves of a history: every chain whole, every run verified before it ran.

Each service chains its own events of a mission (the executor's facts, the verifier's verdict),
so a history is checked chain by chain: (tenant, mission, service).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rustchain.domain.artifacts import ArtifactRef
from rustchain.domain.event_chain import verify_chain
from rustchain.domain.events import EventEnvelope

ChainKey = tuple[str, str, str]
PLAN_VERIFIED = "PlanVerified"
VERIFIER = "verifier"
EXECUTOR = "executor"


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
    """Every chain whole and untouched, and every run proven SAFE before its first step."""
    findings: list[AuditFinding] = []
    grouped = chains(events)
    for (tenant, mission, service), chain in grouped.items():
        broken = verify_chain(chain)
        if broken is not None:
            findings.append(AuditFinding(tenant, mission, f"{service} chain: {broken.describe()}"))
    for (tenant, mission, service), chain in grouped.items():
        if service != EXECUTOR:
            continue
        problem = _verified_before_run(chain, grouped.get((tenant, mission, VERIFIER), []))
        if problem is not None:
            findings.append(AuditFinding(tenant, mission, problem))
    return findings


def _verified_before_run(
    executor: list[EventEnvelope], verifier: list[EventEnvelope]
) -> str | None:
    started = next((e for e in executor if e.type == "MissionStarted"), None)
    first_step = next((e for e in executor if e.type == "StepStarted"), None)
    if started is None or first_step is None:
        return None
    plan_hash = started.payload.get("plan_hash")
    safe = [
        e
        for e in verifier
        if e.type == PLAN_VERIFIED
        and e.payload.get("status") == "safe"
        and e.payload.get("plan_hash") == plan_hash
    ]
    if not safe:
        return f"ran without a SAFE verdict for its plan {plan_hash} (no PlanVerified event)"
    if min(e.occurred_at for e in safe) > first_step.occurred_at:
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


def _detail(event: EventEnvelope) -> str:
    payload: dict[str, Any] = event.payload
    if event.type == PLAN_VERIFIED:
        return (
            f"verdict {payload.get('status')} under policy {payload.get('policy_name')} "
            f"(policy hash {str(payload.get('policy_hash'))[:12]}, plan hash "
            f"{str(payload.get('plan_hash'))[:12]})"
        )
    if event.type == "MissionStarted":
        return (
            f"plan hash {str(payload.get('plan_hash'))[:12]}, variables {payload.get('variables')}"
        )
    if event.type == "StepStarted":
        if payload.get("input_error") is not None:
            return (
                f"attempt {payload.get('attempt')}: inputs not rendered: {payload['input_error']}"
            )
        if payload.get("inputs") is not None:
            inputs = json.dumps(payload["inputs"], sort_keys=True, ensure_ascii=False)
            return f"attempt {payload.get('attempt')}: inputs {inputs[:120]}"
        return f"attempt {payload.get('attempt')}"
    if event.type == "StepSucceeded":
        ref = ArtifactRef.of_value(payload.get("output"))
        output = repr(payload.get("output")) if ref is None else f"artifact {ref.sha256}"
        return f"attempt {payload.get('attempt')}: output {output[:120]}"
    if event.type == "StepFailed":
        retry = f", retry at {payload['retry_at']}" if payload.get("retry_at") else ""
        return f"attempt {payload.get('attempt')}: {payload.get('error')}{retry}"
    if event.type in {"StepSkipped", "StepInterrupted", "MissionCancelRequested"}:
        return str(payload.get("reason"))
    if event.type == "MissionFinished":
        return f"{payload.get('outcome')}; failed steps {payload.get('failed_steps')}"
    return ""


def timeline(events: Iterable[EventEnvelope]) -> list[TimelineEntry]:
    """A mission's facts from every service, in time order: replayed, never re-run."""
    ordered = sorted(events, key=lambda e: (e.occurred_at, e.service, e.sequence))
    return [
        TimelineEntry(e.occurred_at, e.service, e.type, e.payload.get("step_id"), _detail(e))
        for e in ordered
    ]
