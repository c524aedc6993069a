"""The executor's spans come from its record: each event names the span that wrote it, a resumed
mission keeps its trace, and reading a history back (replay, resume) emits nothing."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from rustchain.bootstrap.executor import build_executor
from rustchain.domain.plans.bindings import bind_variables
from rustchain.domain.runs.mission_run import MissionRun
from rustchain.domain.runs.run_events import run_fact
from rustchain.executor.application import ExecutorApplication
from rustchain.platform.storage.event_store import EventStore, EventStoreSettings, open_event_store
from rustchain.platform.storage.mission_files import compile_file
from rustchain.platform.telemetry.mission_spans import MissionSpans, workflow_traceparent
from rustchain.platform.telemetry.setup import PresetIdGenerator
from rustchain.steps import default_registry

MISSION = """\
version: "1.0"
name: traced
steps:
  - id: write
    name: Write a file
    step_type: create_file
    parameters: {path: out.txt, content: "hi"}
  - id: missing
    name: Read a file that is not there
    step_type: read_file
    depends_on: [write]
    continue_on_error: true
    parameters: {path: nowhere.txt}
"""


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider(id_generator=PresetIdGenerator())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    opened = open_event_store(EventStoreSettings("executor", tmp_path))
    yield opened  # type: ignore[misc]
    opened.close()


def _executor(store: EventStore, tmp_path: Path, provider: TracerProvider) -> ExecutorApplication:
    executor = build_executor(
        {**os.environ, "RUSTCHAIN_HOME": str(tmp_path)},
        store,
        registry=default_registry(include_plugins=False),
        workspaces=tmp_path / "ws",
        policy_for=None,
    )
    # The test's tracer, whose spans it reads back, in place of the process's global one.
    executor.spans = MissionSpans(store.mission_events, provider.get_tracer("test"))
    return executor


def _start(executor: ExecutorApplication, provider: TracerProvider, tmp_path: Path) -> str:
    source = tmp_path / "traced.yaml"
    source.write_text(MISSION)
    plan = compile_file(str(source), executor.registry).plan
    assert plan is not None
    # As the StartMission RPC does: the start is recorded inside the server's span.
    with provider.get_tracer("test").start_as_current_span("StartMission"):
        return executor.start("acme", plan, bind_variables(plan.variables, {}))


def _by_id(spans: tuple[ReadableSpan, ...]) -> dict[int, ReadableSpan]:
    return {span.context.span_id: span for span in spans if span.context is not None}


def test_each_event_names_the_span_that_wrote_it(
    store: EventStore, tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    executor = _executor(store, tmp_path, provider)
    mission_id = _start(executor, provider, tmp_path)
    run = asyncio.run(executor.drive("acme", mission_id))
    assert run.outcome == "succeeded"

    spans = _by_id(exporter.get_finished_spans())
    events = store.mission_events("acme", mission_id)
    assert all(e.traceparent is not None for e in events)
    for event in events:
        assert event.traceparent is not None
        _, trace_id, span_id, _ = event.traceparent.split("-")
        span = spans[int(span_id, 16)]
        assert span.context is not None and f"{span.context.trace_id:032x}" == trace_id
    names = {e.type: spans[int(str(e.traceparent).split("-")[2], 16)].name for e in events}
    assert names["MissionStarted"] == "StartMission"
    assert names["MissionFinished"] == "invoke_workflow traced"
    assert names["StepSucceeded"] == "execute_tool create_file"
    assert names["StepFailed"] == "execute_tool read_file"

    attempts = {
        s.attributes["rustchain.step.id"]: s
        for s in spans.values()
        if s.attributes and "rustchain.step.id" in s.attributes
    }
    assert attempts["missing"].status.status_code is StatusCode.ERROR
    started = {run_fact(e).step_id: e.occurred_at for e in events if e.type == "StepStarted"}  # type: ignore[union-attr]
    assert attempts["write"].start_time == int(started["write"].timestamp() * 1e9)


def test_a_resumed_mission_keeps_its_trace_and_reading_emits_nothing(
    store: EventStore, tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    first = _executor(store, tmp_path, provider)
    mission_id = _start(first, provider, tmp_path)
    started_by = store.mission_events("acme", mission_id)[0].traceparent
    before = len(exporter.get_finished_spans())

    # Another executor (after a crash) reads the history back: folding and indexing emit nothing.
    second = _executor(store, tmp_path, provider)
    assert isinstance(second.load("acme", mission_id), MissionRun)
    assert second.unfinished() == [("acme", mission_id)]
    assert len(exporter.get_finished_spans()) == before

    run = asyncio.run(second.drive("acme", mission_id))
    assert run.outcome == "succeeded"
    workflow = workflow_traceparent(started_by, mission_id)
    assert workflow is not None
    mission_span = next(
        s for s in exporter.get_finished_spans() if s.name == "invoke_workflow traced"
    )
    assert mission_span.context is not None
    assert f"{mission_span.context.span_id:016x}" == workflow.split("-")[2]
    assert mission_span.parent is not None
    assert f"{mission_span.parent.span_id:016x}" == str(started_by).split("-")[2]
    steps = [s for s in exporter.get_finished_spans() if s.name.startswith("execute_tool")]
    assert len(steps) == 2
    assert all(
        s.parent is not None and s.parent.span_id == mission_span.context.span_id for s in steps
    )


def test_without_a_trace_nothing_is_recorded_or_emitted(
    store: EventStore, tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    executor = _executor(store, tmp_path, provider)
    source = tmp_path / "traced.yaml"
    source.write_text(MISSION)
    plan = compile_file(str(source), executor.registry).plan
    assert plan is not None
    mission_id = executor.start("acme", plan, {})
    asyncio.run(executor.drive("acme", mission_id))
    assert all(e.traceparent is None for e in store.mission_events("acme", mission_id))
    assert exporter.get_finished_spans() == ()
