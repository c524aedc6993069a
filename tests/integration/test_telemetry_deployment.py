"""A mission through `rustchain up --otlp` is one trace, seen by an OTLP receiver the test runs:
spans from the CLI, planner, verifier, executor and trainer, parented across gRPC and NATS, a span
per step attempt, the same trace after an executor SIGKILL, and the context its events record."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from rustchain.planner.clients import GrpcVerifier
from rustchain.platform.grpc.client import open_channel
from rustchain.platform.nats.server import free_port
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.platform.storage.mission_files import compile_file
from rustchain.steps import default_registry
from tests.conditions import wait_until_sync
from tests.integration.otlp_receiver import GrpcReceiver, HttpReceiver, ReceivedSpan
from tests.integration.test_grpc_deployment import SLOW, _children
from tests.paths import REPO

UP_TIMEOUT_SECONDS = 60.0
RUN_TIMEOUT_SECONDS = 90.0
# Export quickly, so the test waits for spans in hundreds of milliseconds, not seconds.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_METRIC_EXPORT_INTERVAL": "500"}
START_MISSION = "/rustchain.executor.v1.ExecutorService/StartMission"


def _wait_for(condition: Callable[[], object], what: str) -> None:
    wait_until_sync(lambda: bool(condition()), UP_TIMEOUT_SECONDS, what)


def _environ(home: Path, **extra: str) -> dict[str, str]:
    environ = {**os.environ, "RUSTCHAIN_HOME": str(home), **FAST_EXPORT, **extra}
    for name in ("RUSTCHAIN_ENDPOINT", "NATS_URL"):
        environ.pop(name, None)
    return environ


class Up:
    """`rustchain up --otlp URL` in a temporary home."""

    def __init__(self, tmp_path: Path, otlp: str, **extra: str) -> None:
        self.home = tmp_path / "home"
        self.log_path = tmp_path / "up.log"
        self.environ = _environ(self.home, **extra)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rustchain", "up", "--otlp", otlp],
            env=self.environ,
            stdout=self._log,
            stderr=self._log,
        )
        _wait_for((self.home / "endpoints.json").is_file, "endpoints.json")

    def run(self, mission: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rustchain", "run", mission],
            env={**self.environ, **extra},
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
            cwd=REPO,
            check=False,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(UP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture
def grpc_receiver() -> Iterator[GrpcReceiver]:
    receiver = GrpcReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()
    yield receiver
    receiver.stop()


def _mission_id(stdout: str) -> str:
    return " ".join(stdout.split()).split("(", 1)[1].split(")", 1)[0]


def _trace_of(spans: list[ReceivedSpan], mission_id: str) -> list[ReceivedSpan]:
    """Every span of the trace the mission's own span belongs to."""
    workflows = [s for s in spans if s.attributes.get("rustchain.mission.id") == mission_id]
    assert workflows, "no span names the mission"
    trace_id = workflows[0].trace_id
    return [s for s in spans if s.trace_id == trace_id]


def _one(spans: list[ReceivedSpan], **where: object) -> ReceivedSpan:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in where.items())]
    assert len(found) == 1, (where, [(s.service, s.name) for s in spans])
    return found[0]


def _executor_events(home: Path, mission_id: str) -> list[tuple[str, str | None]]:
    store = open_event_store(EventStoreSettings("executor", home))
    try:
        return [(e.type, e.traceparent) for e in store.mission_events("default", mission_id)]
    finally:
        store.close()


def _named(receiver: GrpcReceiver | HttpReceiver, name: str) -> bool:
    return any(s.name == name for s in receiver.received.span_list())


EXPECTED_POINTS: list[tuple[str, dict[str, object]]] = [
    ("rustchain.missions.started", {"service": "rustchain-executor", "tenant": "default"}),
    (
        "rustchain.missions.finished",
        {"service": "rustchain-executor", "tenant": "default", "outcome": "succeeded"},
    ),
    (
        "rustchain.step.duration",
        {"service": "rustchain-executor", "step_type": "create_file", "outcome": "succeeded"},
    ),
    ("rustchain.verifier.solver.duration", {"service": "rustchain-verifier", "verdict": "safe"}),
    ("rustchain.relay.lag.events", {"service": "rustchain-relay", "store": "executor"}),
    ("rustchain.relay.lag.seconds", {"service": "rustchain-relay", "store": "verifier"}),
    # The SDK's own count of spans processed (and dropped, with error.type=queue_full).
    ("otel.sdk.processor.span.processed", {"service": "rustchain-executor"}),
]


def _point(receiver: GrpcReceiver, metric: str, labels: dict[str, object]) -> bool:
    wanted = {k: v for k, v in labels.items() if k != "service"}
    return any(
        p.metric == metric
        and p.service == labels["service"]
        and wanted.items() <= p.attributes.items()
        for p in receiver.received.point_list()
    )


def _has_trainer_span(receiver: GrpcReceiver | HttpReceiver) -> bool:
    return any(s.service == "rustchain-trainer" for s in receiver.received.span_list())


def test_a_mission_is_one_trace_across_grpc_nats_and_its_steps(
    grpc_receiver: GrpcReceiver, tmp_path: Path
) -> None:
    up = Up(tmp_path, grpc_receiver.endpoint)
    try:
        done = up.run("missions/hello.yaml", OTEL_EXPORTER_OTLP_ENDPOINT=grpc_receiver.endpoint)
        assert done.returncode == 0, done.stderr
        mission_id = _mission_id(done.stdout)
        _wait_for(lambda: _has_trainer_span(grpc_receiver), "the trainer's span")
        spans = _trace_of(grpc_receiver.received.span_list(), mission_id)
        events = _executor_events(up.home, mission_id)
        for metric, labels in EXPECTED_POINTS:
            _wait_for(partial(_point, grpc_receiver, metric, labels), f"{metric} {labels}")
    finally:
        up.stop()

    by_id = {s.span_id: s for s in spans}
    services = {s.service for s in spans}
    assert {
        "rustchain-cli",
        "rustchain-planner",
        "rustchain-verifier",
        "rustchain-executor",
        "rustchain-trainer",
    } <= services
    root = _one(spans, service="rustchain-cli", name="rustchain run")
    assert root.parent_id == ""
    # Every other span hangs from a span of the same trace: nothing is cut off.
    assert all(s.parent_id in by_id for s in spans if s is not root)

    submit = _one(spans, service="rustchain-planner", kind=2)  # SERVER
    assert by_id[submit.parent_id].service == "rustchain-cli"
    assert by_id[by_id[submit.parent_id].parent_id] is root
    verify = _one(spans, service="rustchain-verifier", kind=2)
    assert by_id[verify.parent_id].service == "rustchain-planner"
    start = _one(spans, service="rustchain-executor", name=START_MISSION)
    assert by_id[start.parent_id].service == "rustchain-planner"

    workflow = _one(spans, name="invoke_workflow hello")
    assert workflow.parent_id == start.span_id
    assert workflow.attributes["gen_ai.operation.name"] == "invoke_workflow"
    steps = [s for s in spans if s.name.startswith("execute_tool ")]
    assert sorted(s.attributes["rustchain.step.id"] for s in steps) == [
        "read_greeting",
        "say_it",
        "write_greeting",
    ]
    assert all(s.parent_id == workflow.span_id for s in steps)
    assert all(workflow.start_ns <= s.start_ns <= s.end_ns <= workflow.end_ns for s in steps)
    trajectory = _one(spans, service="rustchain-trainer", name="process trajectory")
    assert trajectory.parent_id == workflow.span_id  # from the NATS message's header

    # Each event records the context of the span that wrote it.
    recorded = {tp.split("-")[2] for _, tp in events if tp is not None}
    assert len(recorded) == len({tp for _, tp in events}) and all(tp for _, tp in events)
    assert recorded <= set(by_id)
    written_by = {kind: by_id[tp.split("-")[2]] for kind, tp in events if tp is not None}
    assert written_by["MissionStarted"] is start
    assert written_by["MissionFinished"] is workflow


def test_a_mission_resumed_after_an_executor_sigkill_stays_in_its_trace(
    http_receiver: HttpReceiver, tmp_path: Path
) -> None:
    up = Up(tmp_path, http_receiver.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf")
    mission = tmp_path / "slow.yaml"
    mission.write_text(SLOW)
    output = tmp_path / "run.out"
    try:
        with output.open("wb") as sink:
            run = subprocess.Popen(
                [sys.executable, "-m", "rustchain", "run", str(mission)],
                env={**up.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": http_receiver.endpoint},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
            try:
                _wait_for(lambda: "> slow" in output.read_text(), "the slow step's start")
                # What an executor exported before it is killed stays; what it queued is lost.
                _wait_for(lambda: _named(http_receiver, "execute_tool create_file"), "seed's span")
                first = _children(up.process.pid)["executor"]
                os.kill(first, signal.SIGKILL)
                assert run.wait(RUN_TIMEOUT_SECONDS) == 0, output.read_text()
            finally:
                if run.poll() is None:
                    run.kill()
                    run.wait()
        mission_id = _mission_id(output.read_text())
        _wait_for(lambda: _has_trainer_span(http_receiver), "the trainer's span")
        spans = _trace_of(http_receiver.received.span_list(), mission_id)
    finally:
        up.stop()

    by_id = {s.span_id: s for s in spans}
    start = _one(spans, service="rustchain-executor", name=START_MISSION)
    workflow = _one(spans, name="invoke_workflow slow")
    assert workflow.parent_id == start.span_id
    attempts = {
        s.attributes["rustchain.step.id"]: s for s in spans if s.name.startswith("execute_tool")
    }
    assert set(attempts) == {"seed", "slow", "after"}
    assert all(s.parent_id == workflow.span_id for s in attempts.values())
    # The interrupted attempt's span was emitted by the restarted executor from its record.
    assert attempts["slow"].attributes["rustchain.step.outcome"] == "interrupted"
    assert attempts["slow"].status_code == 2  # ERROR
    assert _one(spans, service="rustchain-cli", name="rustchain run").parent_id == ""
    assert all(s.parent_id in by_id for s in spans if s.service != "rustchain-cli")


def test_a_dead_collector_changes_nothing_for_missions(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    up = Up(tmp_path, dead)
    try:
        done = up.run("missions/hello.yaml", OTEL_EXPORTER_OTLP_ENDPOINT=dead)
        assert done.returncode == 0, done.stderr
        assert "mission succeeded" in " ".join(done.stdout.split())
        mission_id = _mission_id(done.stdout)
        kinds = [kind for kind, _ in _executor_events(up.home, mission_id)]
        assert kinds[0] == "MissionStarted" and kinds[-1] == "MissionFinished"
    finally:
        up.stop()
    assert up.process.returncode == 0


def _scrape(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def test_serve_exposes_its_metrics_for_prometheus(tmp_path: Path) -> None:
    port = free_port()
    serving = subprocess.Popen(
        [sys.executable, "-m", "rustchain", "serve", "verifier", "--metrics-port", str(port)],
        env=_environ(tmp_path / "home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
    )
    try:
        assert serving.stdout is not None
        endpoint = serving.stdout.readline().split()[-1]  # "rustchain verifier serving on H:P"
        plan = compile_file(str(REPO / "missions" / "hello.yaml"), default_registry()).plan
        assert plan is not None

        async def verify() -> str:
            async with open_channel(endpoint) as channel:
                return (await GrpcVerifier(channel, endpoint).verify("default", plan, "")).status

        assert asyncio.run(verify()) == "safe"
        url = f"http://127.0.0.1:{port}/metrics"
        _wait_for(lambda: "rustchain_verifier_solver_duration" in _scrape(url), "the metric")
        scraped = _scrape(url)
        assert 'service_name="rustchain-verifier"' in scraped
        assert 'verdict="safe"' in scraped
    finally:
        serving.send_signal(signal.SIGTERM)
        assert serving.wait(UP_TIMEOUT_SECONDS) == 0


def test_a_bad_otel_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rustchain", "serve", "memory"],
        env=_environ(
            tmp_path / "home",
            OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4317",
            OTEL_EXPORTER_OTLP_PROTOCOL="http/json",
        ),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "rustchain serve memory: OTEL_EXPORTER_OTLP_PROTOCOL is 'http/json':"
        " expected one of grpc, http/protobuf"
    ]
