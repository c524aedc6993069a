"""The one place a process sets up OpenTelemetry, from the standard `OTEL_*` variables.

The SDK reads the details itself (endpoint, headers, timeouts, `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_BSP_*` queue bounds); this module only decides which exporters run. Nothing is exported
when nothing is configured: with no `OTEL_EXPORTER_OTLP_*ENDPOINT`, no `OTEL_*_EXPORTER` and no
metrics port, the process keeps the API's no-op providers and pays nothing. Telemetry never slows
a mission: spans leave through a bounded BatchSpanProcessor on its own thread (what it drops when
the queue is full is counted by the SDK's `otel.sdk.processor.span.processed` with
`error.type=queue_full`), and shutdown waits a bounded time for a collector that does not answer.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

SERVICE_PREFIX = "rustchain-"
METRICS_HOST_VARIABLE = "RUSTCHAIN_METRICS_HOST"
SDK_INTERNAL_METRICS = "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"
FLUSH_SECONDS = 2.0
"""The longest a process waits for its collector when it flushes or stops."""
GRPC = "grpc"
HTTP_PROTOBUF = "http/protobuf"
_PROTOCOLS = (GRPC, HTTP_PROTOBUF)
_log = logging.getLogger(__name__)


class TelemetrySettingError(ValueError):
    """An `OTEL_*` setting names an exporter or protocol this deployment does not have."""


_preset_span_id: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "rustchain_preset_span_id", default=None
)


class PresetIdGenerator(RandomIdGenerator):
    """Random ids, except the span id a caller chose for the next span (`preset_span_id`).

    Spans of durable work (a step attempt, a mission) are emitted after the fact, from recorded
    times, with the span id their events already carry: a resumed mission keeps its trace."""

    def generate_span_id(self) -> int:
        preset = _preset_span_id.get()
        if preset is not None:
            _preset_span_id.set(None)
            return preset
        return super().generate_span_id()


def preset_span_id(span_id: int) -> contextvars.Token[int | None]:
    """Make `span_id` the id of the next span this context starts (reset with the token)."""
    return _preset_span_id.set(span_id)


def reset_span_id(token: contextvars.Token[int | None]) -> None:
    """Forget a preset span id that was not used."""
    _preset_span_id.reset(token)


@dataclass
class Telemetry:
    """The process's providers, or None for a signal that is off."""

    service: str
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    closers: list[Callable[[], object]] = field(default_factory=list)

    @property
    def tracing(self) -> bool:
        """Whether spans are exported."""
        return self.tracer_provider is not None

    def flush(self, seconds: float = FLUSH_SECONDS) -> None:
        """Send what is queued, waiting at most `seconds` (a short-lived CLI calls this)."""
        millis = int(seconds * 1000)
        actions: list[Callable[[], object]] = []
        if self.tracer_provider is not None:
            actions.append(partial(self.tracer_provider.force_flush, millis))
        if self.meter_provider is not None:
            actions.append(partial(self.meter_provider.force_flush, millis))
        _bounded(actions, seconds)

    def shutdown(self, seconds: float = FLUSH_SECONDS) -> None:
        """Flush and stop the exporters, waiting at most `seconds` for the collector."""
        for closer in self.closers:
            closer()
        actions: list[Callable[[], object]] = []
        if self.tracer_provider is not None:
            actions.append(self.tracer_provider.shutdown)
        if self.meter_provider is not None:
            actions.append(partial(self.meter_provider.shutdown, seconds * 1000))
        _bounded(actions, seconds)


def _bounded(actions: list[Callable[[], object]], seconds: float) -> None:
    # A dead collector must not hold a process that is stopping: the exporters' retries run on
    # daemon threads, side by side, abandoned once `seconds` have passed.
    workers = [threading.Thread(target=a, name="telemetry-flush", daemon=True) for a in actions]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + seconds
    for worker in workers:
        worker.join(max(deadline - time.monotonic(), 0.0))


def _names(environ: Mapping[str, str], variable: str) -> list[str]:
    return [n.strip().lower() for n in environ.get(variable, "").split(",") if n.strip()]


def _endpoint_set(environ: Mapping[str, str], signal: str) -> bool:
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    )


def exporter_names(environ: Mapping[str, str], signal: str) -> list[str]:
    """The exporters a signal (TRACES, METRICS) uses: `OTEL_<signal>_EXPORTER`, else `otlp` when
    an OTLP endpoint is set, else none."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = _names(environ, f"OTEL_{signal}_EXPORTER")
    if not names:
        return ["otlp"] if _endpoint_set(environ, signal) else []
    return [n for n in names if n != "none"]


def otlp_protocol(environ: Mapping[str, str], signal: str) -> str:
    """`OTEL_EXPORTER_OTLP_<signal>_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`, else grpc."""
    value = (
        environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or GRPC
    ).strip()
    if value not in _PROTOCOLS:
        raise TelemetrySettingError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL is {value!r}: expected one of {', '.join(_PROTOCOLS)}"
        )
    return value


def _span_exporter(name: str, environ: Mapping[str, str]) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    if name != "otlp":
        raise TelemetrySettingError(
            f"OTEL_TRACES_EXPORTER names {name!r}: expected otlp, console or none"
        )
    if otlp_protocol(environ, "TRACES") == GRPC:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    return HttpSpanExporter()


def _metric_exporter(name: str, environ: Mapping[str, str]) -> MetricExporter:
    if name == "console":
        return ConsoleMetricExporter()
    if otlp_protocol(environ, "METRICS") == GRPC:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter()
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetricExporter,
    )

    return HttpMetricExporter()


def _metric_readers(
    environ: Mapping[str, str], metrics_port: int | None, closers: list[Callable[[], object]]
) -> list[MetricReader]:
    readers: list[MetricReader] = []
    for name in exporter_names(environ, "METRICS"):
        if name == "prometheus":
            continue  # served below when a port is given
        if name not in {"otlp", "console"}:
            raise TelemetrySettingError(
                f"OTEL_METRICS_EXPORTER names {name!r}: expected otlp, prometheus, console or none"
            )
        # OTEL_METRIC_EXPORT_INTERVAL sets the period (the SDK reads it).
        readers.append(PeriodicExportingMetricReader(_metric_exporter(name, environ)))
    if metrics_port is not None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import start_http_server

        host = environ.get(METRICS_HOST_VARIABLE, "127.0.0.1")
        try:
            server, _thread = start_http_server(metrics_port, addr=host)
        except OSError as error:
            raise TelemetrySettingError(
                f"cannot serve metrics on {host}:{metrics_port}: {error.strerror or error}"
            ) from None
        closers.append(server.shutdown)
        readers.append(PrometheusMetricReader())
    return readers


def otlp_environ(url: str) -> dict[str, str]:
    """The settings that point a process's traces and metrics at an OTLP collector."""
    if not url.startswith(("http://", "https://")):
        raise TelemetrySettingError(f"--otlp {url!r}: expected an http:// or https:// URL")
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": url}


def resource_for(service: str, environ: Mapping[str, str]) -> Resource:
    """`service.name` rustchain-<service> (unless OTEL_SERVICE_NAME says otherwise), with
    OTEL_RESOURCE_ATTRIBUTES merged by the SDK."""
    attributes = (
        {} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: SERVICE_PREFIX + service}
    )
    return Resource.create(attributes)


class _Process:
    """The telemetry this process installed (providers are global: set once per process)."""

    installed: Telemetry | None = None


def configure_telemetry(
    service: str, environ: Mapping[str, str] | None = None, metrics_port: int | None = None
) -> Telemetry:
    """Set up this process's tracer and meter providers from the `OTEL_*` settings, once.

    `environ` decides which exporters run; the exporters read their details from the process
    environment, as the SDK does. TelemetrySettingError names a setting it cannot honour."""
    if _Process.installed is not None:
        return _Process.installed
    env = os.environ if environ is None else environ
    telemetry = Telemetry(service)
    span_exporters = [_span_exporter(name, env) for name in exporter_names(env, "TRACES")]
    readers = _metric_readers(env, metrics_port, telemetry.closers)
    if not span_exporters and not readers:
        _Process.installed = telemetry
        return telemetry
    resource = resource_for(service, env)
    if readers:
        telemetry.meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        metrics.set_meter_provider(telemetry.meter_provider)
    if span_exporters and telemetry.meter_provider is not None:
        # The SDK counts what its processor drops only when asked; with metrics exported, it is.
        os.environ.setdefault(SDK_INTERNAL_METRICS, "true")
    if span_exporters:
        provider = TracerProvider(resource=resource, id_generator=PresetIdGenerator())
        for exporter in span_exporters:
            # Bounded queue (OTEL_BSP_MAX_QUEUE_SIZE, 2048 by default); drops are counted.
            provider.add_span_processor(
                BatchSpanProcessor(exporter, meter_provider=telemetry.meter_provider)
            )
        trace.set_tracer_provider(provider)
        telemetry.tracer_provider = provider
    _Process.installed = telemetry
    _log.debug("telemetry for %s: %s", service, telemetry)
    return telemetry


def installed() -> Telemetry | None:
    """The telemetry this process configured, if it did."""
    return _Process.installed


def tracing_enabled() -> bool:
    """Whether this process exports spans (gRPC instrumentation is added only then)."""
    return _Process.installed is not None and _Process.installed.tracing
