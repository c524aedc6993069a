"""The verifier's use cases: a plan proven against its tenant's policy, recorded, and granted;
or a mission file verified on the command line."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rustchain.domain.plans.compiler import Compilation
from rustchain.domain.plans.plan import Plan
from rustchain.domain.plans.verdict import Verdict
from rustchain.domain.plans.verdict_grant import VerdictGrant
from rustchain.domain.policy.model import Policy
from rustchain.platform.credentials.tokens import issue_verdict
from rustchain.platform.storage.event_store import EventStore
from rustchain.platform.storage.mission_files import compile_file
from rustchain.steps import constraint_generators, default_registry
from rustchain.verifier.engine import verify_plan
from rustchain.verifier.recording import record_verdict
from rustchain.verifier.settings import VerifierSettings


@dataclass(frozen=True)
class FileVerification:
    """The compilation of a mission file and, when it compiled, its verdict."""

    compilation: Compilation
    verdict: Verdict | None


def verify_file(
    path: str, policy: Policy, settings: VerifierSettings | None = None
) -> FileVerification:
    """Compile a mission file and verify its plan against the policy."""
    compilation = compile_file(path, default_registry())
    if compilation.plan is None:
        return FileVerification(compilation, None)
    verdict = verify_plan(compilation.plan, policy, constraint_generators(), settings)
    return FileVerification(compilation, verdict)


class InconsistentPlanError(Exception):
    """A plan whose parts disagree (a level naming no step, a dependency on none): not one the
    planner makes, so not one to prove anything about."""


def check_consistent(plan: Plan) -> None:
    """Every step once in the levels, at its own level, after the steps it depends on."""
    ids = [step.id for step in plan.steps]
    if len(set(ids)) != len(ids):
        raise InconsistentPlanError("the plan names a step id twice")
    level_of = {step_id: n for n, level in enumerate(plan.levels) for step_id in level}
    if sorted(level_of) != sorted(ids) or sum(map(len, plan.levels)) != len(ids):
        raise InconsistentPlanError("the plan's levels do not list each of its steps once")
    for step in plan.steps:
        if level_of[step.id] != step.level:
            raise InconsistentPlanError(f"step '{step.id}' is not at its level")
        for upstream in step.depends_on:
            if level_of.get(upstream, step.level) >= step.level:
                raise InconsistentPlanError(
                    f"step '{step.id}' depends on '{upstream}', which is not an earlier step"
                )


@dataclass(frozen=True)
class Verification:
    """A verdict and, for a SAFE plan of a mission when the verifier signs, the signed grant the
    executor requires before it starts anything ("" otherwise)."""

    verdict: Verdict
    grant_token: str = ""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return str(uuid.uuid4())


class VerifierApplication:
    """Verifies plans against each tenant's policy: verify, record the verdict, grant."""

    def __init__(
        self,
        store: EventStore,
        policy_for: Callable[[str], Policy],
        settings: VerifierSettings | None = None,
        signing_key: Ed25519PrivateKey | None = None,
        clock: Callable[[], datetime] = _utc_now,
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        self.store = store
        self.policy_for = policy_for
        self.settings = settings or VerifierSettings()
        # With the verifier's own key, a SAFE verdict for a mission comes with a signed grant.
        self.signing_key = signing_key
        self.clock = clock
        self.new_id = new_id

    async def verify(self, tenant: str, plan: Plan, mission_id: str = "") -> Verification:
        """Prove the plan safe or say how it is not; with a mission id, record the verdict in
        the mission's chain (a `PlanVerified` event) and grant a SAFE one.

        Raises PolicyFileError when the tenant's policy cannot be read, CorruptHistoryError when
        the mission's recorded verdicts cannot be, EventStoreError when the store fails, and
        InconsistentPlanError for a plan whose parts disagree."""
        check_consistent(plan)
        policy = self.policy_for(tenant)
        # The solver holds the thread for as long as it thinks: off the event loop.
        verdict = await asyncio.to_thread(
            verify_plan, plan, policy, constraint_generators(), self.settings
        )
        if not mission_id:
            return Verification(verdict)
        record_verdict(self.store, verdict, tenant, mission_id, self.new_id, self.clock)
        return Verification(verdict, self._grant(tenant, mission_id, verdict))

    def _grant(self, tenant: str, mission_id: str, verdict: Verdict) -> str:
        if not verdict.safe or self.signing_key is None:
            return ""
        grant = VerdictGrant(
            tenant=tenant,
            mission_id=mission_id,
            plan_hash=verdict.plan_hash,
            policy_hash=verdict.policy_hash,
        )
        return issue_verdict(self.signing_key, grant)
