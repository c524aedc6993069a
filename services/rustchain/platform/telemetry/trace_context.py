"""W3C trace context as the record keeps it (a `traceparent` string), and spans emitted after the
fact from recorded times with the span id the record already names."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from rustchain.platform.telemetry.setup import preset_span_id, reset_span_id

TRACEPARENT = "traceparent"


def current_traceparent() -> str | None:
    """The traceparent of the span current in this context, or None when there is none."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get(TRACEPARENT)


def context_of(traceparent: str | None) -> Context | None:
    """The context a stored or received traceparent continues (None: none, or unreadable)."""
    if not traceparent:
        return None
    context = propagate.extract({TRACEPARENT: traceparent})
    if not trace.get_current_span(context).get_span_context().is_valid:
        return None
    return context


def context_from_headers(headers: Mapping[str, str] | None) -> Context | None:
    """The context a message's `traceparent` header continues, if it carries one."""
    return context_of((headers or {}).get(TRACEPARENT))


def span_id_of(traceparent: str) -> int:
    """The parent-id field of a traceparent, as the integer span id it names."""
    return int(traceparent.split("-")[2], 16)


def with_span_id(traceparent: str, span_id: int) -> str:
    """The same trace and flags, naming span `span_id`."""
    version, trace_id, _, flags = traceparent.split("-")
    return f"{version}-{trace_id}-{span_id:016x}-{flags}"


def random_span_id() -> int:
    """A fresh non-zero span id."""
    return secrets.randbits(64) or 1


def derived_span_id(*parts: str) -> int:
    """A span id every process derives alike from the same parts (non-zero)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") or 1


def _nanos(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


def emit_span(
    tracer: trace.Tracer,
    name: str,
    parent: str | None,
    span_id: int,
    start: datetime,
    end: datetime,
    attributes: Mapping[str, AttributeValue],
    error: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> None:
    """Emit a finished span `span_id`, child of the span `parent` names, over [start, end]."""
    context = context_of(parent)
    if context is None:
        return
    token = preset_span_id(span_id)
    try:
        span = tracer.start_span(
            name, context=context, kind=kind, attributes=attributes, start_time=_nanos(start)
        )
    finally:
        reset_span_id(token)
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, error[:500]))
    span.end(end_time=max(_nanos(end), _nanos(start)))


@contextmanager
def consumer_span(
    name: str, headers: Mapping[str, str] | None, subject: str, **attributes: AttributeValue
) -> Iterator[trace.Span]:
    """A span processing a NATS message, continuing the trace its `traceparent` header names."""
    tracer = trace.get_tracer("rustchain.nats")
    with tracer.start_as_current_span(
        name,
        context=context_from_headers(headers),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "nats",
            "messaging.operation.type": "process",
            "messaging.destination.name": subject,
            **attributes,
        },
    ) as span:
        yield span
