"""Every reader of stored events sees upcast, typed facts: the one path through `FactFamily`.

An older version of a fact (StepStarted v1, and a MissionFinished v1 of an older shape that a
test-only upcaster turns into the current one) reads as the current fact through every
projection: the mission index, the audit timeline and verification, the trajectory, re-execution
and the Watch client. A fact newer than the code, or one whose payload does not fit, is refused
with CorruptHistoryError by each of them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rustchain.cli.remote_run import watched_fact
from rustchain.domain.errors import CorruptHistoryError
from rustchain.domain.events.envelope import EventDraft, EventEnvelope, seal_all
from rustchain.domain.events.upcast import Payload, UpcastError, Upcasters
from rustchain.domain.events.verification_events import VERIFICATION_FACTS, PlanVerified
from rustchain.domain.plans.verdict import Verdict, VerdictStatus
from rustchain.domain.runs.audit import timeline, verify_history
from rustchain.domain.runs.facts import FACTS
from rustchain.domain.runs.mission_index import UNREADABLE, MissionIndex
from rustchain.domain.runs.reexecution import run_facts
from rustchain.domain.runs.run_events import (
    RUN_EVENT_TYPES,
    RUN_FACTS,
    MissionFinished,
    StepStarted,
)
from rustchain.domain.runs.trajectory import build_trajectory
from rustchain.generated.rustchain.executor.v1 import executor_pb2
from rustchain.verifier.recording import verdict_draft
from tests.paths import DATA

V1_HISTORY = DATA / "histories" / "v1" / "code_analysis_with_retry.jsonl"
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in V1_HISTORY.read_text().splitlines()]


def _sealed(records: list[dict[str, Any]], service: str = "executor") -> list[EventEnvelope]:
    drafts = [
        EventDraft(
            id=str(uuid.UUID(int=n)),
            tenant="acme",
            mission_id="m1",
            service=service,
            aggregate_id="m1",
            aggregate_version=n,
            type=record["type"],
            version=record.get("version", 1),
            occurred_at=START + timedelta(seconds=n),
            payload=record["payload"],
        )
        for n, record in enumerate(records, start=1)
    ]
    return seal_all(drafts, {})


def _old_finished(payload: Payload) -> Payload:
    """MissionFinished v1 → v2 in this test: `result` and `failed` became their current names."""
    old = dict(payload)
    return {
        "outcome": old.pop("result"),
        "failed_steps": old.pop("failed"),
        "outputs": old.pop("outputs"),
    }


@pytest.fixture
def finished_v2(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """MissionFinished is at version 2 for this test, with an upcaster from version 1."""
    for family in (RUN_FACTS, FACTS):
        bumped = Upcasters()
        bumped.include(family.upcasters)
        bumped.register("MissionFinished", 1, _old_finished)
        monkeypatch.setattr(family, "upcasters", bumped)
    yield


def _old_history() -> list[EventEnvelope]:
    """The v1 history (StepStarted v1), its MissionFinished stored in its older shape."""
    records = _records()
    finished = records[-1]["payload"]
    records[-1]["payload"] = {
        "result": finished["outcome"],
        "failed": finished["failed_steps"],
        "outputs": finished["outputs"],
    }
    return _sealed(records)


def _verdict(plan_hash: str) -> Verdict:
    return Verdict(
        status=VerdictStatus.SAFE,
        file="m.yaml",
        mission_name="code-analysis",
        plan_hash=plan_hash,
        policy_name="default",
        policy_hash="p" * 64,
        rules_proven=["filesystem.workspace"],
        queries=3,
        solver_seconds=0.01,
    )


def _with_verdict(events: list[EventEnvelope]) -> list[EventEnvelope]:
    plan_hash = events[0].payload["plan_hash"]
    draft = verdict_draft(_verdict(plan_hash), "acme", "m1", 1, str(uuid.uuid4()), START)
    return [*seal_all([draft], {}), *events]


def test_type_lists_are_derived_from_the_models() -> None:
    assert RUN_FACTS.types == RUN_EVENT_TYPES
    assert set(FACTS.types) == {*RUN_EVENT_TYPES, "PlanVerified"}
    assert FACTS.current_version("StepStarted") == RUN_FACTS.current_version("StepStarted") == 2
    assert FACTS.current_version("PlanVerified") == 1


@pytest.mark.usefixtures("finished_v2")
def test_an_older_fact_reads_upcast_through_every_projection() -> None:
    events = _old_history()
    assert (events[1].version, events[-1].version) == (1, 1)

    index = MissionIndex()
    for event in events:
        index.apply(event)
    (entry,) = index.of_tenant("acme")
    assert entry.status == "succeeded" and index.unfinished() == []

    assert build_trajectory(events).outcome == "succeeded"

    facts = run_facts(events)
    assert isinstance(facts[-1], MissionFinished) and facts[-1].outcome == "succeeded"
    started = facts[1]
    assert isinstance(started, StepStarted) and not started.inputs_recorded

    history = _with_verdict(events)
    assert verify_history(history) == []
    entries = timeline(history)
    assert entries[0].type == "PlanVerified" and entries[0].detail.startswith("verdict safe")
    assert entries[-1].detail == "succeeded; failed steps []"

    message = executor_pb2.MissionEvent(
        mission_id="m1",
        version=len(events),
        type="MissionFinished",
        payload_json=json.dumps(events[-1].payload),
        schema_version=1,
    )
    fact = watched_fact(message)
    assert isinstance(fact, MissionFinished) and fact.outcome == "succeeded"


def test_the_watch_client_upcasts_a_version_1_step_started() -> None:
    v1 = {"step_id": "count_lines", "attempt": 2}
    message = executor_pb2.MissionEvent(
        mission_id="m1",
        version=4,
        type="StepStarted",
        step_id="count_lines",
        payload_json=json.dumps(v1),
        schema_version=1,
    )

    fact = watched_fact(message)

    assert isinstance(fact, StepStarted) and fact.attempt == 2 and not fact.inputs_recorded


def test_the_watch_client_refuses_a_fact_newer_than_it_knows() -> None:
    message = executor_pb2.MissionEvent(
        mission_id="m1",
        version=4,
        type="StepStarted",
        payload_json=json.dumps({"step_id": "a", "attempt": 1}),
        schema_version=3,
    )

    with pytest.raises(UpcastError, match="newer than this code knows"):
        watched_fact(message)


def _tampered(edit: dict[str, Any]) -> list[EventEnvelope]:
    records = _records()
    records[1] = {**records[1], **edit}
    return _sealed(records)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        ({"version": 3}, "newer than this code knows"),
        ({"payload": {"step_id": "list_sources"}}, "does not hold a StepStarted: attempt"),
    ],
    ids=["newer-version", "payload-misfits"],
)
def test_a_fact_that_cannot_be_read_is_refused_by_every_projection(
    edit: dict[str, Any], reason: str
) -> None:
    events = _tampered(edit)

    index = MissionIndex()
    for event in events:
        index.apply(event)
    (entry,) = index.of_tenant("acme")
    assert entry.status == UNREADABLE and index.unfinished() == []
    assert reason in index.unreadable()[("acme", "m1")]
    with pytest.raises(CorruptHistoryError, match=reason):
        build_trajectory(events)
    with pytest.raises(CorruptHistoryError, match=reason):
        run_facts(events)
    with pytest.raises(CorruptHistoryError, match=reason):
        timeline(events)
    (finding,) = verify_history(_with_verdict(events))
    assert "a fact cannot be read" in finding.problem and reason in finding.problem


def test_a_corrupt_history_is_not_a_value_error() -> None:
    # Status tables that map ValueError to INVALID_ARGUMENT must not blame the caller for it.
    assert not issubclass(CorruptHistoryError, ValueError)
    assert issubclass(UpcastError, CorruptHistoryError)


def test_plan_verified_round_trips_typed() -> None:
    verdict = _verdict("h" * 64)
    (stored,) = seal_all([verdict_draft(verdict, "acme", "m1", 1, str(uuid.uuid4()), START)], {})

    recorded = VERIFICATION_FACTS.read(stored)

    assert stored.type == "PlanVerified" and stored.version == 1
    assert stored.payload == verdict.model_dump(mode="json")  # stored as every verifier did
    assert isinstance(recorded.fact, PlanVerified) and recorded.version == 1
    assert recorded.fact.verdict() == verdict
    assert FACTS.read(stored).fact == recorded.fact


def test_a_verdict_without_its_policy_hash_is_refused() -> None:
    verdict = _verdict("h" * 64)
    draft = verdict_draft(verdict, "acme", "m1", 1, str(uuid.uuid4()), START)
    payload = {k: v for k, v in draft.payload.items() if k != "policy_hash"}
    (stored,) = seal_all([draft.model_copy(update={"payload": payload})], {})

    with pytest.raises(CorruptHistoryError, match="policy_hash"):
        VERIFICATION_FACTS.read(stored)


def test_a_run_event_is_not_read_as_a_verdict() -> None:
    (started, *_) = _sealed(_records())

    with pytest.raises(CorruptHistoryError, match="not one of PlanVerified"):
        VERIFICATION_FACTS.read(started)
    assert VERIFICATION_FACTS.read_all([started]) == []
