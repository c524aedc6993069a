"""The executor's MissionDriver and admission: what starts, who drives it, cancel, stop, resume.

Built by the bootstrap on an in-memory store, with scripted step runners (tests/replay.py).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rustchain.bootstrap.executor import build_executor
from rustchain.domain.access.quotas import QuotaExceededError, TenantQuotas
from rustchain.domain.plans.verdict_grant import UnverifiedPlanError, VerdictGrant
from rustchain.executor.admission import Admission, StartMission
from rustchain.executor.application import ExecutorApplication, MissionNotFoundError
from rustchain.executor.driver import MissionDriver
from rustchain.platform.credentials.tokens import issue_verdict
from rustchain.platform.nats.jetstream import StreamUsage
from rustchain.platform.storage.event_store import EventStore, in_memory_event_store
from tests.replay import ScriptedRunners
from tests.unit.compile_helpers import plan_of

PLAN = plan_of(
    'version: "1.0"\nname: two\nsteps:\n'
    "  - id: a\n    name: A\n    step_type: noop\n    retry: {idempotent: true}\n"
    "  - {id: b, name: B, step_type: noop, depends_on: [a]}\n"
)
TENANT = "acme"


@pytest.fixture
def home() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="rustchain-driver-") as folder:
        yield Path(folder)


def _executor(
    home: Path,
    store: EventStore,
    runners: ScriptedRunners,
    admission: Admission | None = None,
    quotas: TenantQuotas | None = None,
) -> ExecutorApplication:
    return build_executor(
        {"RUSTCHAIN_HOME": str(home)},
        store,
        registry=runners.registry(),
        admission=admission,
        quotas=quotas,
    )


def _done(step_id: str, attempt: int) -> str:
    return f"{step_id} done"


def test_a_start_without_the_verifiers_grant_is_refused_and_records_nothing(home: Path) -> None:
    private = Ed25519PrivateKey.generate()
    store = in_memory_event_store()
    admission = Admission(verdict_key=private.public_key())
    driver = MissionDriver(_executor(home, store, ScriptedRunners(_done), admission))
    grant = VerdictGrant(tenant=TENANT, mission_id="m1", plan_hash=PLAN.content_hash)

    async def scenario() -> str:
        with pytest.raises(UnverifiedPlanError):
            await driver.start(StartMission(TENANT, PLAN, mission_id="m1"))
        token = issue_verdict(private, grant)
        with pytest.raises(UnverifiedPlanError):
            await driver.start(StartMission(TENANT, PLAN, mission_id="m2", verdict_token=token))
        mission_id = await driver.start(
            StartMission(TENANT, PLAN, mission_id="m1", verdict_token=token)
        )
        return (await driver.finished(TENANT, mission_id)).outcome or ""

    assert asyncio.run(scenario()) == "succeeded"
    assert store.mission_events(TENANT, "m2") == []


def test_a_start_is_refused_when_the_tenants_stream_has_no_room(home: Path) -> None:
    async def full(tenant: str) -> StreamUsage:
        return StreamUsage(held_bytes=1_000_000, max_bytes=1_000_000)

    store = in_memory_event_store()
    quotas = TenantQuotas(max_stream_bytes=1_000_000)
    executor = _executor(home, store, ScriptedRunners(_done), Admission(stream_usage=full), quotas)

    with pytest.raises(QuotaExceededError, match="event stream is full"):
        asyncio.run(MissionDriver(executor).start(StartMission(TENANT, PLAN, mission_id="m1")))
    assert store.mission_events(TENANT, "m1") == []


def test_a_mission_is_driven_by_one_task_however_often_it_is_asked(home: Path) -> None:
    runners = ScriptedRunners(_done)
    driver = MissionDriver(_executor(home, in_memory_event_store(), runners))

    async def scenario() -> None:
        mission_id = await driver.start(StartMission(TENANT, PLAN, mission_id="m1"))
        assert driver.owns(TENANT, mission_id) and not driver.claim(TENANT, mission_id)
        driver.drive(TENANT, mission_id)
        assert driver.resume_unfinished() == [(TENANT, mission_id)]
        await driver.finished(TENANT, mission_id)
        assert not driver.owns(TENANT, mission_id)

    asyncio.run(scenario())
    assert runners.attempts == {"a": 1, "b": 1}


def test_drives_stopped_with_the_process_are_resumed_by_the_next_one(home: Path) -> None:
    store = in_memory_event_store()
    holding = ScriptedRunners(_done, held=frozenset({"a"}))

    async def first_process() -> None:
        holding.all_held = asyncio.Event()
        driver = MissionDriver(_executor(home, store, holding))
        await driver.start(StartMission(TENANT, PLAN, mission_id="m1"))
        await holding.all_held.wait()
        await driver.stop()

    async def second_process() -> str:
        driver = MissionDriver(_executor(home, store, ScriptedRunners(_done)))
        assert driver.resume_unfinished() == [(TENANT, "m1")]
        return (await driver.finished(TENANT, "m1")).outcome or ""

    asyncio.run(first_process())
    assert asyncio.run(second_process()) == "succeeded"
    facts = build_executor({"RUSTCHAIN_HOME": str(home)}, store).load(TENANT, "m1")
    assert facts.steps["a"].attempt == 2
    history = [e.type for e in store.mission_events(TENANT, "m1")]
    assert history.count("StepInterrupted") == 1


def test_a_cancel_before_the_drive_begins_ends_the_mission_with_nothing_run(home: Path) -> None:
    runners = ScriptedRunners(_done)
    store = in_memory_event_store()
    driver = MissionDriver(_executor(home, store, runners))

    async def scenario() -> str:
        mission_id = await driver.start(StartMission(TENANT, PLAN, mission_id="m1"))
        assert driver.cancel(TENANT, mission_id, "changed my mind")
        return (await driver.finished(TENANT, mission_id)).outcome or ""

    assert asyncio.run(scenario()) == "cancelled"
    assert runners.attempts == {}
    assert not driver.cancel(TENANT, "m1", "again")


def test_an_unknown_mission_is_not_found(home: Path) -> None:
    driver = MissionDriver(_executor(home, in_memory_event_store(), ScriptedRunners(_done)))

    with pytest.raises(MissionNotFoundError, match="no mission 'nope' for tenant 'acme'"):
        driver.cancel(TENANT, "nope", "why not")


def test_every_append_wakes_the_watchers(home: Path) -> None:
    driver = MissionDriver(_executor(home, in_memory_event_store(), ScriptedRunners(_done)))

    async def scenario() -> tuple[bool, bool, bool]:
        woken_by_start = driver.changes.signal()
        await driver.start(StartMission(TENANT, PLAN, mission_id="m1"))
        woken_by_drive = driver.changes.signal()
        waiting_before = woken_by_drive.is_set()
        await driver.finished(TENANT, "m1")
        return woken_by_start.is_set(), waiting_before, woken_by_drive.is_set()

    assert asyncio.run(scenario()) == (True, False, True)
