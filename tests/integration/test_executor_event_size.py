"""The executor never records an event over the deployment's event limit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rustchain.bootstrap.executor import build_executor
from rustchain.domain.access.quotas import QuotaExceededError, TenantQuotas
from rustchain.domain.runs.run_events import MissionFinished, StepFailed, StepStarted, run_fact
from rustchain.executor.application import ExecutorApplication
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.steps import default_registry
from tests.unit.compile_helpers import plan_of

LIMIT = 20_000
MISSION = """\
version: "1.0"
name: sizes
config: {fail_fast: false}
variables:
  text: {type: string}
steps:
  - {id: big, step_type: noop, parameters: {message: "{text}"}}
  - {id: bigger, step_type: noop, depends_on: [big], parameters: {message: "{text}{text}{text}"}}
"""


def executor_of(tmp_path: Path) -> ExecutorApplication:
    store = open_event_store(EventStoreSettings(name="executor", home=tmp_path))
    quotas = TenantQuotas(max_event_bytes=LIMIT)
    registry = default_registry(include_plugins=False)
    return build_executor(
        {"RUSTCHAIN_HOME": str(tmp_path)}, store, registry=registry, quotas=quotas, policy_for=None
    )


def test_outputs_and_inputs_over_the_limit_fail_their_steps_and_nothing_large_is_stored(
    tmp_path: Path,
) -> None:
    executor = executor_of(tmp_path)
    text = "x" * 8_000
    mission = executor.start("acme", plan_of(MISSION), {"text": text})

    run = asyncio.run(executor.drive("acme", mission))

    stored = executor.store.mission_events("acme", mission)
    facts = [run_fact(e) for e in stored]
    starts = {f.step_id: f for f in facts if isinstance(f, StepStarted)}
    failed = {f.step_id: f.error for f in facts if isinstance(f, StepFailed)}
    [finished] = [f for f in facts if isinstance(f, MissionFinished)]
    assert max(len(e.to_json().encode()) for e in stored) < LIMIT + 8 * 1024
    # 'big' ran (8 kB of inputs) and its output was recorded; 'bigger' never ran.
    assert starts["big"].inputs == {"message": text}
    assert starts["bigger"].inputs is None
    assert failed["bigger"] == starts["bigger"].input_error
    assert "the rendering of its inputs takes 24,014 bytes" in failed["bigger"]
    assert "(20,000 bytes, RUSTCHAIN_MAX_EVENT_BYTES)" in failed["bigger"]
    assert finished.outcome == "failed" and run.finished
    executor.store.close()


def test_a_mission_whose_start_is_over_the_limit_is_refused_before_anything_is_stored(
    tmp_path: Path,
) -> None:
    executor = executor_of(tmp_path)

    with pytest.raises(QuotaExceededError, match="RUSTCHAIN_MAX_EVENT_BYTES"):
        executor.start("acme", plan_of(MISSION), {"text": "x" * LIMIT})

    assert executor.store.notifications(0, 10) == []
    executor.store.close()
