"""A process's telemetry for its lifetime: providers from the `OTEL_*` settings, JSON logs, and
a bounded flush when it ends."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from rustchain.platform.telemetry.json_logs import LOG_LEVEL_VARIABLE, configure_json_logs
from rustchain.platform.telemetry.setup import Telemetry, configure_telemetry

CLI = "cli"
JSON = "json"
TEXT = "text"
LOG_FORMAT_VARIABLE = "RUSTCHAIN_LOG_FORMAT"


@contextmanager
def telemetry_for(
    service: str, metrics_port: int | None = None, log_format: str = JSON
) -> Iterator[Telemetry]:
    """Telemetry of `service` (rustchain-<service>) while the block runs, and its logs on stderr
    as JSON lines (RUSTCHAIN_LOG_FORMAT, else `log_format`: `json` or `text`, Python's own)."""
    telemetry = configure_telemetry(service, os.environ, metrics_port)
    handler = None
    if os.environ.get(LOG_FORMAT_VARIABLE, log_format).strip().lower() == JSON:
        handler = configure_json_logs(service, os.environ.get(LOG_LEVEL_VARIABLE, "INFO"))
    try:
        yield telemetry
    finally:
        telemetry.shutdown()
        if handler is not None:
            logging.getLogger().removeHandler(handler)


@contextmanager
def command_span(name: str, **attributes: str) -> Iterator[None]:
    """The root span of a CLI command (a submission): its RPCs are its children. The CLI's
    telemetry is set up for the block and flushed, a bounded time, when it ends."""
    telemetry = configure_telemetry(CLI, os.environ)
    if not telemetry.tracing:
        yield
        return
    tracer = trace.get_tracer("rustchain.cli")
    try:
        with tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes):
            yield
    finally:
        telemetry.flush()
