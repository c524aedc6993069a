"""The verifier's signed word that a plan is SAFE for a tenant's mission, and the executor's check.

The planner hands the executor what the verifier answered, but the executor cannot take the
planner's (or any caller's) word for it: it starts a mission only with a grant the verifier
signed for that tenant, that mission and that exact plan.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class UnverifiedPlanError(PermissionError):
    """A start without a SAFE verdict for this tenant, mission and plan (PERMISSION_DENIED)."""


class VerdictGrant(BaseModel):
    """What a verdict token says: this plan was proven SAFE for this tenant's mission."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    typ: Literal["verdict"] = "verdict"
    tenant: str = Field(min_length=1)
    mission_id: str = Field(min_length=1)
    plan_hash: str = Field(min_length=1)
    policy_hash: str = ""


def check_grant(grant: VerdictGrant, tenant: str, mission_id: str, plan_hash: str) -> None:
    """Accept the grant for this start, or say what does not match (and nothing more)."""
    if grant.tenant != tenant:
        raise UnverifiedPlanError("the verdict token was given for another tenant")
    if grant.mission_id != mission_id:
        raise UnverifiedPlanError("the verdict token was given for another mission")
    if grant.plan_hash != plan_hash:
        raise UnverifiedPlanError(
            "the verdict token was given for another plan: the plan changed after verification"
        )
