"""The verifier's fact: a plan's verdict under a tenant's policy, kept for auditors."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict

from rustchain.domain.events.fact_family import FactFamily
from rustchain.domain.events.upcast import Upcasters
from rustchain.domain.plans.verdict import Verdict

VERIFIER = "verifier"
"""The service that records verdicts (the chain a mission's verdicts are in)."""


class PlanVerified(Verdict):
    """A verdict on a mission's plan: the verdict whole, with the plan's and the policy's hash.

    Version 1 (the current one) is the verdict's own JSON, so the payload is `Verdict` as stored
    by every verifier so far."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: Literal["PlanVerified"] = "PlanVerified"

    @classmethod
    def of(cls, verdict: Verdict) -> PlanVerified:
        """The fact of a verdict."""
        return cls.model_validate(verdict.model_dump())

    def verdict(self) -> Verdict:
        """The verdict this fact keeps."""
        return Verdict.model_validate(self.model_dump(exclude={"type"}))


VERIFICATION_UPCASTERS = Upcasters()
"""How stored verdicts of older versions read as the current ones (none yet: all are v1)."""

VERIFICATION_FACTS: FactFamily[PlanVerified] = FactFamily(PlanVerified, VERIFICATION_UPCASTERS)
"""The verifier's facts: the only path from a stored verdict event to its fact."""

PLAN_VERIFIED = VERIFICATION_FACTS.types[0]
