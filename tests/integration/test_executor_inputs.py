"""The executor records, in each StepStarted, the rendered inputs its runner is given."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rustchain.bootstrap.executor import build_executor
from rustchain.domain.runs.reexecution import reexecute, run_facts
from rustchain.domain.runs.run_events import StepFailed, StepStarted, StepSucceeded, run_fact
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.steps import default_registry
from tests.unit.compile_helpers import plan_of

MISSION = """\
version: "1.0"
name: inputs
config: {fail_fast: false}
variables:
  who: {type: string}
steps:
  - {id: greet, step_type: noop, parameters: {message: "hello {who}"}}
  - {id: answer, step_type: noop, depends_on: [greet], parameters: {message: "got {greet.output}"}}
  - {id: broken, step_type: noop, depends_on: [greet], parameters: {message: "{greet.nothing}"}}
"""


def test_each_runner_gets_the_inputs_recorded_before_it_ran_and_reexecution_agrees(
    tmp_path: Path,
) -> None:
    store = open_event_store(EventStoreSettings(name="executor", home=tmp_path))
    executor = build_executor(
        {"RUSTCHAIN_HOME": str(tmp_path)},
        store,
        registry=default_registry(include_plugins=False),
        policy_for=None,
    )
    mission = executor.start("acme", plan_of(MISSION), {"who": "Ada"})

    asyncio.run(executor.drive("acme", mission))

    stored = store.mission_events("acme", mission)
    facts = [run_fact(e) for e in stored]
    starts = {f.step_id: f for f in facts if isinstance(f, StepStarted)}
    outputs = {f.step_id: f.output for f in facts if isinstance(f, StepSucceeded)}
    [failed] = [f for f in facts if isinstance(f, StepFailed)]
    assert all(e.version == 2 for e in stored if e.type == "StepStarted")
    assert starts["greet"].inputs == {"message": "hello Ada"}
    assert starts["answer"].inputs == {"message": "got hello Ada"}
    # noop outputs its message: the runner was given exactly the recorded inputs.
    assert outputs == {"greet": "hello Ada", "answer": "got hello Ada"}
    assert starts["broken"].inputs is None
    assert starts["broken"].input_error == "KeyError: 'nothing'"
    assert (failed.step_id, failed.error) == ("broken", starts["broken"].input_error)
    assert reexecute(run_facts(stored)).agrees
    store.close()
