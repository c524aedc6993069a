"""The span of an audit read (replay, verify, export, re-execute), linked to the missions' traces.

An audit happens long after the missions it reads, so it is a trace of its own; each mission's
trace is joined by a span link to the traceparent its events recorded (the first one of each
trace: the span that started the mission), so a tracing backend goes from the audit to the
missions it read and back. The links are bounded (`MAX_LINKS`); how many traces were left out is
an attribute. With no `OTEL_*` settings nothing is set up.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from rustchain.domain.events.envelope import EventEnvelope
from rustchain.platform.telemetry.setup import configure_telemetry
from rustchain.platform.telemetry.trace_context import context_of

CLI = "cli"
MAX_LINKS = 32
"""The most missions' traces an audit span links to (the SDK allows 128 links a span)."""


class AuditSpan:
    """The audit's span, or nothing when tracing is off; `read` links what was read."""

    def __init__(self, span: trace.Span | None) -> None:
        self.span = span
        self._linked: set[str] = set()
        self._left_out = 0
        self._events = 0

    def read(self, events: Iterable[EventEnvelope]) -> None:
        """Link the traces of these events (up to MAX_LINKS in all) and count them."""
        if self.span is None:
            return
        for event in events:
            self._events += 1
            if not event.traceparent:
                continue
            trace_id = event.traceparent.split("-")[1]
            if trace_id in self._linked:
                continue
            context = context_of(event.traceparent)
            if context is None:
                continue
            self._linked.add(trace_id)
            if len(self._linked) > MAX_LINKS:
                self._left_out += 1
                continue
            linked = trace.get_current_span(context).get_span_context()
            attributes: dict[str, AttributeValue] = {
                "rustchain.mission.id": event.mission_id,
                "rustchain.tenant": event.tenant,
                "rustchain.event.type": event.type,
            }
            self.span.add_link(linked, attributes)
        self.span.set_attribute("rustchain.audit.events", self._events)
        self.span.set_attribute("rustchain.audit.traces", len(self._linked))
        self.span.set_attribute("rustchain.audit.links_left_out", self._left_out)


@contextmanager
def audit_span(name: str, **attributes: AttributeValue) -> Iterator[AuditSpan]:
    """The span of one audit command (`audit replay`...), flushed a bounded time at its end."""
    telemetry = configure_telemetry(CLI, os.environ)
    if not telemetry.tracing:
        yield AuditSpan(None)
        return
    tracer = trace.get_tracer("rustchain.audit")
    try:
        with tracer.start_as_current_span(
            name, kind=SpanKind.INTERNAL, attributes=attributes
        ) as span:
            yield AuditSpan(span)
    finally:
        telemetry.flush()
