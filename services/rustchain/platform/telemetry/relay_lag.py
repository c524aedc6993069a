"""How far a relay is behind its store: events committed and not yet acknowledged by JetStream,
and for how long it has not been caught up. Measured at most once a period, from the loop."""

from __future__ import annotations

import time
from collections.abc import Callable

from rustchain.platform.telemetry.instruments import instruments

LAG_PERIOD_SECONDS = 1.0


class RelayLag:
    """Records the lag gauges of one store's relay (label `store`)."""

    def __init__(self, store: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.labels = {"store": store}
        self.clock = clock
        self._measured_at: float | None = None
        self._caught_up_at = clock()

    def due(self) -> bool:
        """Whether a period has passed since the last measurement."""
        return self._measured_at is None or self.clock() - self._measured_at >= LAG_PERIOD_SECONDS

    def observe(self, last_position: int, relayed_position: int) -> None:
        """Record the lag given the store's last position and the relay's acknowledged one."""
        now = self._measured_at = self.clock()
        behind = max(last_position - relayed_position, 0)
        if behind == 0:
            self._caught_up_at = now
        instruments().relay_lag_events.set(behind, self.labels)
        instruments().relay_lag_seconds.set(now - self._caught_up_at, self.labels)
