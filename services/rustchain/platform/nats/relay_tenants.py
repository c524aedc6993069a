"""Per-tenant state of a relay: how far each tenant is published, and why one is paused."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rustchain.platform.storage.event_store import EventStore

log = logging.getLogger(__name__)


def tenant_reader(reader: str, tenant: str) -> str:
    """The tracking name under which a relay records a tenant's own position."""
    return f"{reader}@{tenant}"


@dataclass
class TenantLag:
    """How far one tenant's stream is behind the store, and why, if it is paused."""

    published: int = 0
    waiting: int = 0
    paused_reason: str | None = None
    oldest_waiting_at: datetime | None = None
    refusals: int = 0

    def seconds_behind(self, now: datetime | None = None) -> float:
        """Seconds since the oldest event of the tenant that is not yet published (0: none)."""
        if self.oldest_waiting_at is None:
            return 0.0
        return max(0.0, ((now or datetime.now(UTC)) - self.oldest_waiting_at).total_seconds())


@dataclass
class TenantLane:
    """One tenant's position, and its pause: events after `failed_at` wait for a retry."""

    tenant: str
    position: int
    in_doubt: int
    lag: TenantLag = field(default_factory=TenantLag)
    failed_at: int | None = None
    retry_at: float = 0.0
    backoff: float = 0.0
    # Events of the tenant JetStream acknowledged after the one it refused (a smaller one may
    # fit where a larger one did not): not sent again when the tenant resumes.
    acked_beyond: set[str] = field(default_factory=set)
    seen: int = 0
    # Whether the stream refused an event of the tenant past its position (in this run or the
    # last): a later event may be stored before the refused one, so chain heads prove nothing.
    refused: bool = False

    @property
    def paused(self) -> bool:
        """Whether the tenant's events wait for a retry."""
        return self.failed_at is not None

    def pause(self, position: int, data: bytes, reason: str, now: float, backoff: float) -> bool:
        """Hold the tenant's events from `position` on, retried after `backoff` seconds.

        True when this is a new pause (it is logged); a refusal behind the held event is not.
        """
        if self.failed_at is not None and position >= self.failed_at:
            return False
        new = self.failed_at is None
        self.failed_at = position
        self.refused = True
        self.in_doubt = 0
        self.lag.oldest_waiting_at = _occurred_at(data)
        self.lag.paused_reason = reason
        if new:
            self.lag.refusals += 1
            self.backoff = backoff
            self.retry_at = now + backoff
            self._log(reason)
        return new

    def still_refused(self, reason: str, now: float, backoff_max: float) -> None:
        """The retried event was refused again: wait twice as long, up to `backoff_max`."""
        self.backoff = min(self.backoff * 2, backoff_max)
        self.retry_at = now + self.backoff
        self.lag.refusals += 1
        self.lag.paused_reason = reason
        self._log(reason)

    def wait(self, position: int) -> None:
        """Count an event of the paused tenant that the relay passed over."""
        if position > self.seen:
            self.seen = position
            self.lag.waiting += 1

    def _log(self, reason: str) -> None:
        log.warning(
            "relay paused tenant '%s' at log position %s for %.1f s (its later events wait,"
            " other tenants go on): %s",
            self.tenant,
            self.failed_at,
            self.backoff,
            reason,
        )

    def doubt(self, window: int) -> None:
        """After a lost connection: up to `window` events past the position may be stored."""
        self.in_doubt = 0 if self.refused else window

    def resume(self, position: int) -> None:
        """The event at `position` (the refused one) is published: the tenant goes on."""
        log.warning(
            "relay resumed tenant '%s' at log position %d after %d refusal(s)",
            self.tenant,
            position,
            self.lag.refusals,
        )
        self.position = max(self.position, position)
        self.failed_at = None
        self.backoff = 0.0
        self.lag.paused_reason = None
        self.lag.waiting = 0
        self.lag.oldest_waiting_at = None


def refused_reader(reader: str, tenant: str) -> str:
    """The tracking name under which a relay records the last event a tenant's stream refused."""
    return f"{tenant_reader(reader, tenant)}!refused"


def load_lane(store: EventStore, reader: str, tenant: str, floor: int, window: int) -> TenantLane:
    """A tenant's lane at its durable position (never below the relay's own, `floor`).

    In-doubt events after the position are checked against the chains' heads in JetStream,
    unless the stream refused one of them: then a later, accepted event of the same chain may
    be there before it, so only Nats-Msg-Id deduplication guards against sending one twice.
    """
    position = max(floor, store.tracked_position(tenant_reader(reader, tenant)))
    refused = store.tracked_position(refused_reader(reader, tenant))
    unordered = refused > position
    return TenantLane(tenant, position, in_doubt=0 if unordered else window, refused=unordered)


def _occurred_at(data: bytes) -> datetime | None:
    try:
        return datetime.fromisoformat(json.loads(data)["occurred_at"])
    except (ValueError, KeyError, TypeError):
        return None
