"""Admission of a start: what a mission must carry, and leave room for, before its first fact."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rustchain.domain.access.quotas import TenantQuotas, check_stream_room
from rustchain.domain.plans.plan import Plan
from rustchain.domain.plans.verdict_grant import check_grant
from rustchain.platform.credentials.tokens import read_verdict
from rustchain.platform.nats.jetstream import StreamUsage

StreamUsageSource = Callable[[str], Awaitable[StreamUsage | None]]
"""Where a tenant's event stream stands against its size (None: cannot tell)."""


@dataclass(frozen=True)
class StartMission:
    """A request to run a plan: one argument, so fields can be added later."""

    tenant: str
    plan: Plan
    variables: dict[str, Any] = field(default_factory=dict)
    mission_id: str | None = None
    workspace: Path | None = None
    # The verifier's signed grant for this tenant, mission and plan.
    verdict_token: str = ""


@dataclass(frozen=True)
class Admission:
    """The executor's checks of a start; with no key and no stream, every start is admitted."""

    # With the verifier's public key, a mission starts only with the verifier's signed SAFE
    # verdict; the executor holds no key that could sign one.
    verdict_key: Ed25519PublicKey | None = None
    stream_usage: StreamUsageSource | None = None

    async def admit(self, command: StartMission, quotas: TenantQuotas) -> None:
        """Return when the start may be recorded; else UnverifiedPlanError or
        QuotaExceededError, saying why."""
        if self.verdict_key is not None:
            grant = read_verdict(self.verdict_key, command.verdict_token)
            check_grant(grant, command.tenant, command.mission_id or "", command.plan.content_hash)
        if self.stream_usage is not None:
            usage = await self.stream_usage(command.tenant)
            if usage is not None:
                check_stream_room(command.tenant, usage.held_bytes, quotas.max_stream_bytes)
