"""Audit figures (issue 7): verify and export throughput on a 100,000-event history."""

from __future__ import annotations

import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from rustchain.audit.history import read_export, write_export
from rustchain.domain.audit import verify_history
from rustchain.domain.events import EventDraft, EventEnvelope, seal_all

EVENTS = 100_000
PER_MISSION = 100


def history(count: int) -> list[EventEnvelope]:
    """`count` executor events in missions of PER_MISSION events, sealed into their chains."""
    now = datetime.now(UTC)
    drafts = [
        EventDraft(
            id=str(uuid.uuid4()),
            tenant="bench",
            mission_id=f"m{i // PER_MISSION}",
            service="executor",
            aggregate_id=f"m{i // PER_MISSION}",
            aggregate_version=i % PER_MISSION + 1,
            type="StepSucceeded",
            occurred_at=now,
            payload={"step_id": f"s{i % PER_MISSION}", "attempt": 1, "output": "ok"},
        )
        for i in range(count)
    ]
    return seal_all(drafts, {})


def main() -> None:
    """Print verify and export rates."""
    events = history(EVENTS)
    started = time.perf_counter()
    findings = verify_history(events)
    verify = time.perf_counter() - started
    assert not findings
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        started = time.perf_counter()
        write_export(events, "bench", folder)
        export = time.perf_counter() - started
        started = time.perf_counter()
        read, problems = read_export(folder)
        offline = verify_history(read)
        check = time.perf_counter() - started
        assert not problems and not offline
    print(f"audit verify (chains + verdicts), {EVENTS:,} events: {EVENTS / verify:,.0f} events/s")
    print(f"audit export, {EVENTS:,} events: {EVENTS / export:,.0f} events/s")
    print(f"audit verify of an export offline (read + verify): {EVENTS / check:,.0f} events/s")


if __name__ == "__main__":
    main()
