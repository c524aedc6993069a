"""Telemetry figures (issue 17): per-step and per-RPC overhead with telemetry off, exporting to
a live OTLP collector, and pointed at a dead one, side by side.

Each mode runs in its own process (OpenTelemetry's providers are set once per process). The
live collector is a gRPC OTLP receiver in this process that counts what it is sent; the dead one
is a port nothing listens on. Goal: a dead collector costs a mission no more than a live one.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

STEPS = 300
RPCS = 500
MODES = ("off", "live", "dead")
REPEATS = 3


class _Spans(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.count = 0

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 (the generated name)
        self.count += sum(
            len(scope.spans) for spans in request.resource_spans for scope in spans.scope_spans
        )
        return trace_service_pb2.ExportTraceServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 (the generated name)
        return metrics_service_pb2.ExportMetricsServiceResponse()


def _per_step(home: Path) -> float:
    """Milliseconds per step of a chain of noop steps, started inside a traced call."""
    from bench.bench_executor import REGISTRY, chain_plan
    from rustchain.bootstrap.executor import build_executor
    from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store

    home.mkdir(parents=True, exist_ok=True)
    store = open_event_store(EventStoreSettings(name="executor", home=home))
    environ = {**os.environ, "RUSTCHAIN_HOME": str(home)}
    executor = build_executor(environ, store, registry=REGISTRY, policy_for=None)
    plan = chain_plan(STEPS)
    started = time.perf_counter()
    with trace.get_tracer("bench").start_as_current_span("StartMission"):
        mission = executor.start("bench", plan, {})
    run = asyncio.run(executor.drive("bench", mission))
    elapsed = time.perf_counter() - started
    assert run.outcome == "succeeded"
    store.close()
    return elapsed / STEPS * 1e3


async def _per_rpc(home: Path) -> float:
    """Microseconds per unary call (memory Search) through the traced server and channel."""
    from rustchain.memory.servicer import MemoryServicer, binding
    from rustchain.platform.grpc.client import open_channel
    from rustchain.platform.grpc.memory_client import GrpcMemoryClient
    from rustchain.platform.grpc.server import start_server
    from rustchain.platform.storage.memory_store import SqliteMemoryStore
    from rustchain.platform.telemetry.grpc_tracing import server_interceptors

    home.mkdir(parents=True, exist_ok=True)
    store = SqliteMemoryStore(home / "memory.sqlite3")
    running = await start_server(
        [binding(MemoryServicer(store))], interceptors=server_interceptors()
    )
    endpoint = f"127.0.0.1:{running.port}"
    async with open_channel(endpoint) as channel:
        client = GrpcMemoryClient(channel, endpoint, "bench")
        await client.search("notes", "warm", 1)
        started = time.perf_counter()
        for _ in range(RPCS):
            await client.search("notes", "anything", 1)
        elapsed = time.perf_counter() - started
    await running.stop(0)
    store.close()
    return elapsed / RPCS * 1e6


def worker(mode: str, endpoint: str) -> dict[str, float]:
    """One mode's figures, in this process."""
    from rustchain.platform.telemetry.setup import configure_telemetry

    if mode != "off":
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    telemetry = configure_telemetry("bench")
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch)
        _per_step(home / "warm")  # imports, first compile
        # The best of a few runs: the machine is shared, and noise only ever adds time.
        step_ms = min(_per_step(home / f"steps{i}") for i in range(REPEATS))
        rpc_us = min(asyncio.run(_per_rpc(home / f"rpc{i}")) for i in range(REPEATS))
    started = time.perf_counter()
    telemetry.shutdown()
    stop_s = time.perf_counter() - started
    return {"step_ms": step_ms, "rpc_us": rpc_us, "stop_s": stop_s}


def main() -> None:
    """Print the three modes side by side."""
    spans = _Spans()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(spans, server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    from rustchain.platform.nats.server import free_port

    endpoints = {
        "off": "",
        "live": f"http://127.0.0.1:{port}",
        "dead": f"http://127.0.0.1:{free_port()}",
    }
    figures: dict[str, dict[str, float]] = {}
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    for mode in MODES:
        done = subprocess.run(
            [sys.executable, "-m", "bench.bench_telemetry", mode, endpoints[mode]],
            env=environ,
            capture_output=True,
            text=True,
            check=True,
        )
        figures[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    server.stop(0)
    print(f"{'telemetry':<28}{'per step':>12}{'per RPC':>12}{'stopping':>12}")
    for mode, label in (
        ("off", "off (nothing configured)"),
        ("live", "on, live collector"),
        ("dead", "on, dead collector"),
    ):
        f = figures[mode]
        print(f"{label:<28}{f['step_ms']:>9.3f} ms{f['rpc_us']:>9.0f} us{f['stop_s']:>10.2f} s")
    off, live, dead = (figures[m] for m in MODES)
    print(
        f"overhead on: {live['step_ms'] - off['step_ms']:+.3f} ms per step,"
        f" {live['rpc_us'] - off['rpc_us']:+.0f} us per RPC; dead vs live:"
        f" {dead['step_ms'] / live['step_ms']:.2f}x per step (goal: no slower);"
        f" the collector received {spans.count} spans"
    )


if __name__ == "__main__":
    print(json.dumps(worker(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "")))
