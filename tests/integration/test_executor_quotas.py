"""Per-tenant quotas: concurrent missions are refused past the quota; a mission that reaches its
event quota is stopped and still recorded to its end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rustchain.domain.event_chain import verify_chain
from rustchain.domain.quotas import QuotaExceededError, TenantQuotas
from rustchain.executor.application import ExecutorApplication
from rustchain.platform.event_store import EventStoreSettings, open_event_store
from rustchain.steps import default_registry
from tests.unit.run_simulation import plan_of

ONE_STEP = 'version: "1.0"\nname: one\nsteps:\n  - {id: a, step_type: noop}\n'


def _executor(home: Path, quotas: TenantQuotas) -> ExecutorApplication:
    store = open_event_store(EventStoreSettings(name="executor", home=home))
    return ExecutorApplication(
        store, default_registry(include_plugins=False), home / "ws", quotas=quotas
    )


def test_a_tenant_past_its_concurrent_mission_quota_is_refused_others_are_not(
    tmp_path: Path,
) -> None:
    executor = _executor(tmp_path, TenantQuotas(max_concurrent_missions=2))
    plan = plan_of(ONE_STEP)
    first = executor.start("acme", plan, {})
    executor.start("acme", plan, {})

    with pytest.raises(QuotaExceededError, match="tenant 'acme' already runs 2 missions"):
        executor.start("acme", plan, {})
    executor.start("globex", plan, {})
    asyncio.run(executor.drive("acme", first))
    executor.start("acme", plan, {})


def test_a_mission_reaching_its_event_quota_is_stopped_and_ends_cancelled(tmp_path: Path) -> None:
    steps = "".join(
        f"  - {{id: s{i}, step_type: noop{f', depends_on: [s{i - 1}]' if i else ''}}}\n"
        for i in range(40)
    )
    executor = _executor(tmp_path, TenantQuotas(max_events_per_mission=20))
    mission = executor.start("acme", plan_of('version: "1.0"\nname: long\nsteps:\n' + steps), {})

    run = asyncio.run(executor.drive("acme", mission))

    events = executor.store.mission_events("acme", mission)
    assert run.outcome == "cancelled"
    assert run.cancel_reason == "it reached its quota of 20 events"
    assert sum(e.type == "StepSucceeded" for e in events) < 40
    assert verify_chain(events) is None
    assert events[-1].type == "MissionFinished"
