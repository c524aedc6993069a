"""Per-tenant limits, so that one tenant cannot take a deployment's capacity from the others."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from rustchain.domain.events.size import (
    DEFAULT_MAX_EVENT_BYTES,
    MAX_EVENT_BYTES_SETTING,
    MIN_MAX_EVENT_BYTES,
)

CONCURRENT_MISSIONS_SETTING = "RUSTCHAIN_MAX_CONCURRENT_MISSIONS"
EVENTS_PER_MISSION_SETTING = "RUSTCHAIN_MAX_EVENTS_PER_MISSION"
STREAM_BYTES_SETTING = "RUSTCHAIN_MAX_STREAM_BYTES"
UNLIMITED = -1
ROOM_TO_START_BYTES = 64 * 1024
"""A stream with less room than this cannot hold a new mission's first events."""


class QuotaExceededError(Exception):
    """A tenant asked for more than its quota allows; the message says which and what to do."""


class TenantQuotas(BaseModel):
    """How much one tenant may use at once."""

    model_config = ConfigDict(frozen=True)
    max_concurrent_missions: Annotated[int, Field(ge=1)] = 100
    max_events_per_mission: Annotated[int, Field(ge=10)] = 100_000
    max_stream_bytes: Annotated[int, Field(ge=UNLIMITED)] = UNLIMITED
    """The size of a tenant's JetStream stream; -1: no limit but the server's storage."""
    max_event_bytes: Annotated[int, Field(ge=MIN_MAX_EVENT_BYTES)] = DEFAULT_MAX_EVENT_BYTES
    """The largest payload of one recorded event (the deployment's, the same for every tenant)."""

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> TenantQuotas:
        """The quotas the deployment's settings name, the defaults for the others."""
        values: dict[str, int] = {}
        for field, name in (
            ("max_concurrent_missions", CONCURRENT_MISSIONS_SETTING),
            ("max_events_per_mission", EVENTS_PER_MISSION_SETTING),
            ("max_stream_bytes", STREAM_BYTES_SETTING),
            ("max_event_bytes", MAX_EVENT_BYTES_SETTING),
        ):
            if settings.get(name):
                try:
                    values[field] = int(settings[name])
                except ValueError:
                    raise ValueError(
                        f"{name} expects a whole number, found {settings[name]!r}"
                    ) from None
        return cls(**values)

    def check_start(self, tenant: str, running: int) -> None:
        """Refuse a new mission when the tenant already runs its quota of them."""
        if running >= self.max_concurrent_missions:
            raise QuotaExceededError(
                f"tenant '{tenant}' already runs {running} missions, its quota "
                f"({CONCURRENT_MISSIONS_SETTING}={self.max_concurrent_missions}); wait for one to "
                "finish or cancel one"
            )


def stream_hard_limit(quota_bytes: int) -> int:
    """The size at which a tenant's stream itself refuses events: 10% (at least 1 MiB) above
    its quota, so that the missions running when the quota stopped new ones can still finish
    (-1: no limit)."""
    if quota_bytes <= 0:
        return UNLIMITED
    return quota_bytes + max(quota_bytes // 10, 1_048_576)


def check_stream_room(tenant: str, held_bytes: int, max_bytes: int) -> None:
    """Refuse a new mission when the tenant's event stream is (nearly) at its size quota."""
    if max_bytes > 0 and max_bytes - held_bytes < ROOM_TO_START_BYTES:
        raise QuotaExceededError(
            f"tenant '{tenant}''s event stream is full ({held_bytes:,} of {max_bytes:,} bytes,"
            f" its quota {STREAM_BYTES_SETTING}); new missions start once the quota is raised or"
            " the stream is purged"
        )
