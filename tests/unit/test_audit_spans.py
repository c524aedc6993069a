"""An audit span links each trace it read once, up to a bound, and says how many it left out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rustchain.domain.events.envelope import EventEnvelope
from rustchain.platform.telemetry.audit_spans import MAX_LINKS, AuditSpan


def event(mission: int, span: int, traceparent: str | None = "") -> EventEnvelope:
    if traceparent == "":
        traceparent = f"00-{mission + 1:032x}-{span + 1:016x}-01"
    return EventEnvelope.model_construct(
        id=str(uuid.uuid4()),
        tenant="acme",
        mission_id=f"m{mission}",
        service="executor",
        aggregate_id=f"m{mission}",
        aggregate_version=1,
        type="MissionStarted",
        occurred_at=datetime.now(UTC),
        payload={},
        traceparent=traceparent,
        sequence=1,
        previous_hash="0" * 64,
        hash="0" * 64,
    )


def read_in_a_span(events: list[EventEnvelope]) -> tuple[list[tuple[str, str]], dict[str, object]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span("audit replay") as span:
        AuditSpan(span).read(events)
    (finished,) = exporter.get_finished_spans()
    links = [
        (f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}") for link in finished.links
    ]
    return links, dict(finished.attributes or {})


def test_each_trace_is_linked_once_to_the_first_span_it_recorded() -> None:
    events = [event(0, 0), event(0, 1), event(1, 5), event(0, 2), event(2, 0, None)]

    links, attributes = read_in_a_span(events)

    assert links == [(f"{1:032x}", f"{1:016x}"), (f"{2:032x}", f"{6:016x}")]
    assert attributes["rustchain.audit.events"] == 5
    assert attributes["rustchain.audit.traces"] == 2
    assert attributes["rustchain.audit.links_left_out"] == 0


def test_the_links_are_bounded_and_the_rest_counted() -> None:
    links, attributes = read_in_a_span([event(m, 0) for m in range(MAX_LINKS + 7)])

    assert len(links) == MAX_LINKS
    assert attributes["rustchain.audit.traces"] == MAX_LINKS + 7
    assert attributes["rustchain.audit.links_left_out"] == 7


def test_without_tracing_reading_does_nothing() -> None:
    AuditSpan(None).read([event(0, 0)])
