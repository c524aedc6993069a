"""A local `rustchain run` (no deployment) is one trace too: its root span, the mission's span
and a span per step attempt, with the context recorded in its events; the audit readers' spans
link to it; nothing without OTEL_*."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from tests.conditions import wait_until_sync
from tests.integration.otlp_receiver import GrpcReceiver
from tests.paths import REPO

FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_METRIC_EXPORT_INTERVAL": "500"}
RUN_TIMEOUT_SECONDS = 90.0


@pytest.fixture
def receiver() -> Iterator[GrpcReceiver]:
    receiver = GrpcReceiver()
    yield receiver
    receiver.stop()


def run_here(home: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return rustchain(home, ["run", "missions/hello.yaml"], **extra)


def rustchain(home: Path, arguments: list[str], **extra: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "RUSTCHAIN_HOME": str(home), **FAST_EXPORT, **extra}
    for name in ("RUSTCHAIN_ENDPOINT", "NATS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        if name not in extra:
            environ.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "rustchain", *arguments],
        env=environ,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        cwd=REPO,
        check=False,
    )


def traceparents(home: Path) -> list[tuple[str, str | None]]:
    store = open_event_store(EventStoreSettings("executor", home))
    try:
        return [(n.event.type, n.event.traceparent) for n in store.notifications(0, 1000)]
    finally:
        store.close()


def test_a_local_run_is_one_trace_rooted_in_the_command(
    receiver: GrpcReceiver, tmp_path: Path
) -> None:
    done = run_here(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint)
    assert done.returncode == 0, done.stderr
    # The CLI flushes before it exits, so the spans are already sent; the wait is for the
    # receiver's thread to have stored them.
    wait_until_sync(
        lambda: any(s.name == "rustchain run" for s in receiver.received.span_list()),
        10.0,
        "the root span",
    )

    spans = receiver.received.span_list()
    (root,) = [s for s in spans if s.name == "rustchain run"]
    trace = [s for s in spans if s.trace_id == root.trace_id]
    by_id = {s.span_id: s for s in trace}
    assert root.parent_id == "" and root.service == "rustchain-cli"
    assert root.attributes["rustchain.mission.file"] == "missions/hello.yaml"
    assert all(s.parent_id in by_id for s in trace if s is not root)
    (workflow,) = [s for s in trace if s.name == "invoke_workflow hello"]
    steps = [s for s in trace if s.name.startswith("execute_tool ")]
    assert len(steps) == 3 and all(s.parent_id == workflow.span_id for s in steps)
    # Every span of the run is in the root's trace, and each event names a span of it.
    assert {s.trace_id for s in spans} == {root.trace_id}
    recorded = traceparents(tmp_path)
    assert recorded and all(tp is not None for _, tp in recorded)
    assert {tp.split("-")[1] for _, tp in recorded if tp} == {root.trace_id}
    assert {tp.split("-")[2] for _, tp in recorded if tp} <= set(by_id)


def test_without_otel_settings_a_local_run_records_no_context(tmp_path: Path) -> None:
    done = run_here(tmp_path)

    assert done.returncode == 0, done.stderr
    assert {tp for _, tp in traceparents(tmp_path)} == {None}


def test_the_audit_readers_link_to_the_traces_of_what_they_read(
    receiver: GrpcReceiver, tmp_path: Path
) -> None:
    otlp = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
    done = run_here(tmp_path, **otlp)
    assert done.returncode == 0, done.stderr
    mission_id = " ".join(done.stdout.split()).split("(", 1)[1].split(")", 1)[0]
    wait_until_sync(
        lambda: any(s.name == "rustchain run" for s in receiver.received.span_list()),
        10.0,
        "the root span",
    )
    before = receiver.received.span_list()
    commands = {
        "audit replay": ["audit", "replay", mission_id],
        "audit verify": ["audit", "verify", mission_id, "--no-jetstream"],
        "audit reexecute": ["audit", "reexecute", mission_id],
        "audit export": ["audit", "export", "--tenant", "default", "--out", str(tmp_path / "x")],
    }
    for arguments in commands.values():
        read = rustchain(tmp_path, arguments, **otlp)
        assert read.returncode == 0, read.stderr
    wait_until_sync(
        lambda: set(commands) <= {s.name for s in receiver.received.span_list()},
        10.0,
        "the audit spans",
    )

    spans = receiver.received.span_list()
    (root,) = [s for s in spans if s.name == "rustchain run"]
    mission_spans = {s.span_id for s in spans if s.trace_id == root.trace_id}
    # Reading the history emitted none of the mission's spans again: only the audits' own.
    assert mission_spans == {s.span_id for s in before if s.trace_id == root.trace_id}
    assert len(spans) == len(before) + len(commands)
    for name in commands:
        (audit,) = [s for s in spans if s.name == name]
        # Its own trace, linked to the mission's: to a span of it, naming the mission.
        assert audit.trace_id != root.trace_id and audit.parent_id == ""
        ((trace_id, span_id, attributes),) = audit.links
        assert trace_id == root.trace_id and span_id in mission_spans
        assert attributes["rustchain.mission.id"] == mission_id
        assert audit.attributes["rustchain.audit.traces"] == 1
        assert audit.attributes["rustchain.audit.events"] >= 8
        assert audit.attributes["rustchain.tenant"] == "default"
