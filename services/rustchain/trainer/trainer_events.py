"""The trainer's facts in its own event store: judgements and policy versions, hash-chained.

`TrajectoryJudged` joins the judged mission's chain (aggregate `<mission id>:judgement`); the
policy events of a tenant join the tenant's chain of events that belong to no mission (`_`),
aggregate `policy:<mission name>`. The store is the source of truth: the promoted policies are a
fold of these events (`rustchain.domain.runs.tuned_policy.fold_policies`).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rustchain.domain.events.envelope import EventDraft, EventEnvelope
from rustchain.domain.events.names import NO_MISSION
from rustchain.domain.runs.tuned_policy import (
    POLICY_EVALUATED,
    POLICY_EVENT_TYPES,
    POLICY_PROMOTED,
    POLICY_PROPOSED,
    POLICY_ROLLED_BACK,
    MissionPolicies,
    Score,
    StepSettings,
    fold_policies,
)
from rustchain.domain.training.rule_judge import Judgement
from rustchain.platform.storage.event_store import ChainConflictError, EventStore

SERVICE = "trainer"
TRAJECTORY_JUDGED = "TrajectoryJudged"
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TrainerEvents:
    """Appends the trainer's facts and folds a tenant's policies from them."""

    def __init__(self, store: EventStore, clock: Clock = _utc_now) -> None:
        self.store = store
        self.clock = clock
        # One writer per store in this process; another process's append is a ChainConflict,
        # retried on the fresh head.
        self._lock = threading.Lock()

    def _append(
        self, tenant: str, mission_id: str, aggregate: str, kind: str, payload: dict[str, Any]
    ) -> EventEnvelope:
        with self._lock:
            for _ in range(5):
                earlier = self.store.mission_events(tenant, mission_id)
                version = 1 + sum(e.aggregate_id == aggregate for e in earlier)
                draft = EventDraft(
                    id=str(uuid.uuid4()),
                    tenant=tenant,
                    mission_id=mission_id,
                    service=SERVICE,
                    aggregate_id=aggregate,
                    aggregate_version=version,
                    type=kind,
                    occurred_at=self.clock(),
                    payload=payload,
                )
                try:
                    (event,) = self.store.append([draft])
                except ChainConflictError:
                    continue
                return event
        raise ChainConflictError(f"could not append {kind} for {tenant}/{mission_id}")

    def judged(
        self, tenant: str, mission_id: str, scenario: str, suite: str, judgement: Judgement
    ) -> EventEnvelope:
        """Record one judge's score of one trajectory."""
        payload = {
            "suite": suite,
            "scenario": scenario,
            "judge": judgement.judge,
            "rubric_hash": judgement.rubric_hash,
            "score": judgement.score,
            "passed": judgement.passed,
            "explanation": judgement.explanation,
        }
        return self._append(
            tenant, mission_id, f"{mission_id}:judgement", TRAJECTORY_JUDGED, payload
        )

    def judgements(self, tenant: str, mission_id: str) -> list[EventEnvelope]:
        """Every judgement of one mission, in chain order."""
        return [
            e for e in self.store.mission_events(tenant, mission_id) if e.type == TRAJECTORY_JUDGED
        ]

    def _policy(
        self, tenant: str, mission: str, kind: str, payload: dict[str, Any]
    ) -> EventEnvelope:
        return self._append(
            tenant, NO_MISSION, f"policy:{mission}", kind, {"mission": mission, **payload}
        )

    def proposed(
        self, tenant: str, mission: str, steps: dict[str, StepSettings], reason: str
    ) -> int:
        """Record a new version of a mission's policy; returns its number."""
        version = self.policies(tenant, mission).next_version
        shown = {step: settings.model_dump(mode="json") for step, settings in steps.items()}
        self._policy(
            tenant, mission, POLICY_PROPOSED, {"version": version, "steps": shown, "reason": reason}
        )
        return version

    def evaluated(
        self,
        tenant: str,
        mission: str,
        version: int,
        baseline: Score,
        candidate: Score,
        interval: tuple[float, float],
        promote: bool,
    ) -> None:
        """Record a version's held-out evaluation against the policy it would replace."""
        payload = {
            "version": version,
            "baseline": baseline.model_dump(),
            "candidate": candidate.model_dump(),
            "interval": list(interval),
            "promote": promote,
        }
        self._policy(tenant, mission, POLICY_EVALUATED, payload)

    def promoted(self, tenant: str, mission: str, version: int) -> None:
        """Record that a version now applies to the tenant's runs of the mission."""
        previous = self.policies(tenant, mission).current
        self._policy(tenant, mission, POLICY_PROMOTED, {"version": version, "previous": previous})

    def rolled_back(self, tenant: str, mission: str) -> int:
        """Restore the version promoted before the current one (0: the mission as written);
        returns the version that applies now. KeyError when nothing is promoted."""
        state = self.policies(tenant, mission)
        if state.current == 0:
            raise KeyError(f"tenant '{tenant}' has no promoted policy for mission '{mission}'")
        target = state.history[-1] if state.history else 0
        payload = {"version": state.current, "to_version": target}
        self._policy(tenant, mission, POLICY_ROLLED_BACK, payload)
        return target

    def policy_events(self, tenant: str) -> list[EventEnvelope]:
        """The tenant's policy events, in chain order."""
        return [
            e
            for e in self.store.mission_events(tenant, NO_MISSION)
            if e.service == SERVICE and e.type in POLICY_EVENT_TYPES
        ]

    def missions(self, tenant: str) -> list[str]:
        """The missions the tenant has policies for."""
        return sorted({str(e.payload["mission"]) for e in self.policy_events(tenant)})

    def policies(self, tenant: str, mission: str) -> MissionPolicies:
        """Every version of the tenant's policy for the mission, and the promoted one."""
        facts = [(e.type, e.payload, e.occurred_at.isoformat()) for e in self.policy_events(tenant)]
        return fold_policies(mission, facts)

    def step_policy(
        self, tenant: str, _mission_id: str, mission: str, step_id: str
    ) -> tuple[int, StepSettings] | None:
        """The promoted settings of one llm step, as the executor asks for them."""
        state = self.policies(tenant, mission)
        found = state.promoted()
        if found is None or step_id not in found.steps:
            return None
        return found.version, found.steps[step_id]
