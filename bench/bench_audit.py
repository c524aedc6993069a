"""Audit figures (issue 7): verify and export throughput on a 100,000-event history, the
comparison of the stores with JetStream's copy of it, and re-execution of a long mission."""

from __future__ import annotations

import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from rustchain.audit.history import read_export, write_export
from rustchain.domain.events.envelope import EventDraft, EventEnvelope, decode_event, seal_all
from rustchain.domain.plans.compiler import compile_mission
from rustchain.domain.runs import run_decisions as decide
from rustchain.domain.runs.audit import verify_history
from rustchain.domain.runs.mission_run import MissionRun
from rustchain.domain.runs.reexecution import reexecute, run_facts
from rustchain.domain.runs.run_events import RunEvent, run_event_payload, run_event_version
from rustchain.domain.runs.stream_agreement import compare_with_stream
from rustchain.steps import default_registry

EVENTS = 100_000
PER_MISSION = 100
CHAIN_STEPS = 2_000


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


def chain_history(size: int) -> list[EventEnvelope]:
    """A recorded run of a chain of noop steps, each given the previous one's output."""
    steps = [
        f"  - {{id: s{i}, step_type: noop"
        + (
            f", depends_on: [s{i - 1}], parameters: {{after: 'got {{s{i - 1}.output}}'}}"
            if i
            else ""
        )
        + "}"
        for i in range(size)
    ]
    text = 'version: "1.0"\nname: chain\nsteps:\n' + "\n".join(steps) + "\n"
    compilation = compile_mission(
        text.encode(), "chain.yaml", default_registry(include_plugins=False)
    )
    assert compilation.plan is not None, compilation.errors[:3]
    now = datetime.now(UTC)
    facts: list[RunEvent] = decide.start_mission(compilation.plan, {}, "ws")
    run = MissionRun.fold(facts)
    while not run.finished:
        released = decide.next_events(run, now)
        results: list[RunEvent] = []
        for event in released:
            run.apply(event)
            if event.type == "StepStarted":
                step_id = event.step_id  # type: ignore[union-attr]
                results += decide.step_succeeded(run, step_id, 1, f"out {step_id}", 1)
        for event in results:
            run.apply(event)
        facts += released + results
    drafts = [
        EventDraft(
            id=str(uuid.uuid4()),
            tenant="bench",
            mission_id="chain",
            service="executor",
            aggregate_id="chain",
            aggregate_version=n,
            type=fact.type,
            version=run_event_version(fact),
            occurred_at=now,
            payload=run_event_payload(fact),
        )
        for n, fact in enumerate(facts, start=1)
    ]
    return seal_all(drafts, {})


def main() -> None:
    """Print verify, export, JetStream comparison and re-execution rates."""
    # Re-execution first: as in the CLI, only the one mission's history is in memory.
    recorded = chain_history(CHAIN_STEPS)
    started = time.perf_counter()
    report = reexecute(run_facts(recorded))
    rerun = time.perf_counter() - started
    assert report.agrees and len(report.attempts) == CHAIN_STEPS
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
    streamed = [decode_event(event.to_document()) for event in events]
    started = time.perf_counter()
    comparison = compare_with_stream(events, streamed, ("executor",))
    compare = time.perf_counter() - started
    assert not comparison.findings
    print(f"audit verify (chains + verdicts), {EVENTS:,} events: {EVENTS / verify:,.0f} events/s")
    print(f"audit export, {EVENTS:,} events: {EVENTS / export:,.0f} events/s")
    print(f"audit verify of an export offline (read + verify): {EVENTS / check:,.0f} events/s")
    print(
        f"audit verify, stores against JetStream's copy (comparison alone), {EVENTS:,} events:"
        f" {EVENTS / compare:,.0f} events/s"
    )
    print(
        f"audit reexecute, one mission of {CHAIN_STEPS:,} chained steps ({len(recorded):,}"
        f" events, upcast + fold + re-render + compare): {len(recorded) / rerun:,.0f} events/s,"
        f" {CHAIN_STEPS / rerun:,.0f} attempts/s"
    )


if __name__ == "__main__":
    main()
