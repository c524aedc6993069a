"""Which exporters the `OTEL_*` settings turn on, the resource, relay headers and JSON logs."""

from __future__ import annotations

import json
import logging
import re

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import use_span

from rustchain.platform.nats.jetstream import MSG_ID_HEADER, EventRoute
from rustchain.platform.telemetry.json_logs import JsonLogFormatter
from rustchain.platform.telemetry.setup import (
    TelemetrySettingError,
    exporter_names,
    otlp_environ,
    otlp_protocol,
    resource_for,
)
from rustchain.platform.telemetry.trace_context import context_of, derived_span_id, with_span_id

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_nothing_is_exported_when_nothing_is_configured() -> None:
    assert exporter_names({}, "TRACES") == []
    assert exporter_names({}, "METRICS") == []


def test_an_endpoint_turns_otlp_on_and_the_exporter_settings_win() -> None:
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}
    assert exporter_names(endpoint, "TRACES") == ["otlp"]
    assert exporter_names({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "x"}, "TRACES") == []
    assert exporter_names({**endpoint, "OTEL_TRACES_EXPORTER": "none"}, "TRACES") == []
    assert exporter_names({"OTEL_METRICS_EXPORTER": "prometheus,otlp"}, "METRICS") == [
        "prometheus",
        "otlp",
    ]
    assert exporter_names({**endpoint, "OTEL_SDK_DISABLED": "true"}, "TRACES") == []


def test_the_protocol_is_grpc_unless_set_and_a_bad_one_is_named() -> None:
    assert otlp_protocol({}, "TRACES") == "grpc"
    assert otlp_protocol({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "TRACES") == (
        "http/protobuf"
    )
    signal_wins = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
    }
    assert otlp_protocol(signal_wins, "TRACES") == "http/protobuf"
    with pytest.raises(TelemetrySettingError, match="'http/json'"):
        otlp_protocol({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "TRACES")


def test_otlp_flag_needs_a_url() -> None:
    assert otlp_environ("http://127.0.0.1:4317") == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"
    }
    with pytest.raises(TelemetrySettingError, match="expected an http"):
        otlp_environ("collector:4317")


def test_the_service_name_is_rustchain_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    resource = resource_for("executor", {})
    assert resource.attributes["service.name"] == "rustchain-executor"
    assert resource.attributes["deployment.environment"] == "staging"


def test_the_relay_publishes_the_stored_traceparent() -> None:
    head = {
        "id": "0b6e8c4e-53c3-4f55-9d8e-2a1a3d8f0f00",
        "tenant": "acme",
        "mission_id": "m1",
        "service": "executor",
        "type": "MissionFinished",
        "sequence": 3,
    }
    with_context = EventRoute.of(json.dumps({**head, "traceparent": TRACEPARENT}).encode())
    assert with_context.headers == {MSG_ID_HEADER: head["id"], "traceparent": TRACEPARENT}
    without = EventRoute.of(json.dumps({**head, "traceparent": None}).encode())
    assert without.headers == {MSG_ID_HEADER: head["id"]}


def test_trace_context_helpers() -> None:
    assert context_of(None) is None
    assert context_of("00-00000000000000000000000000000000-b7ad6b7169203331-01") is None
    assert context_of(TRACEPARENT) is not None
    assert with_span_id(TRACEPARENT, 1) == "00-0af7651916cd43dd8448eb211c80319c-0000000000000001-01"
    assert derived_span_id("a", "b") == derived_span_id("a", "b") != derived_span_id("a", "c")


def test_json_logs_carry_the_current_trace_and_span() -> None:
    formatter = JsonLogFormatter("planner")
    record = logging.LogRecord(
        "rustchain.x", logging.WARNING, __file__, 1, "hello %s", ("Ada",), None
    )
    assert "trace_id" not in json.loads(formatter.format(record))
    span = TracerProvider().get_tracer("test").start_span("work")
    with use_span(span, end_on_exit=True):
        line = json.loads(formatter.format(record))
    context = span.get_span_context()
    assert line["message"] == "hello Ada"
    assert line["level"] == "warning" and line["service"] == "planner"
    assert line["trace_id"] == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"


def test_the_grafana_dashboard_queries_metrics_the_services_emit() -> None:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import REGISTRY, generate_latest

    from rustchain.platform.telemetry.instruments import Instruments
    from tests.paths import REPO

    reader = PrometheusMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    emitted = Instruments(provider.get_meter("test"))
    labels = {"tenant": "t"}
    for name in vars(emitted):
        instrument = getattr(emitted, name)
        for method in ("add", "record", "set"):
            if hasattr(instrument, method):
                getattr(instrument, method)(1, labels)
    exposed = {
        line.split("{")[0].split(" ")[0]
        for line in generate_latest(REGISTRY).decode().splitlines()
        if not line.startswith("#")
    }
    REGISTRY.unregister(reader._collector)
    dashboard = json.loads((REPO / "docs" / "grafana-dashboard.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(rustchain_\w+)", target["expr"])
    }
    assert queried, "the dashboard queries no rustchain metric"
    assert queried <= exposed, queried - exposed
