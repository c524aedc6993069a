"""An llm step's `chat {model}` span and token usage, by the GenAI semantic conventions; prompts
and answers only when capture is enabled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from rustchain.steps.support import llm_telemetry
from rustchain.steps.support.llm_client import PROVIDER_SETTING, URL_SETTING
from rustchain.steps.support.runtime import StepRunError
from tests.integration.http_fixtures import LocalServer, json_answer, serve
from tests.integration.step_run_helpers import run_step


@pytest.fixture
def model() -> Iterator[LocalServer]:
    def answer(method: str, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
        text = f"echo: {body['messages'][-1]['content']}"
        if path == "/v1/chat/completions":
            return json_answer(
                {
                    "model": "m1-2025",
                    "choices": [{"message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 7, "completion_tokens": 3},
                }
            )
        if path == "/api/chat":
            message = {"role": "assistant", "content": text}
            return json_answer({"message": message, "prompt_eval_count": 4, "eval_count": 2})
        return json_answer({"error": "no such endpoint"}, 500)

    yield from serve(answer)


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(llm_telemetry, "_tracer", provider.get_tracer("test"))
    return exporter


@pytest.fixture
def usage(monkeypatch: pytest.MonkeyPatch) -> InMemoryMetricReader:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    histogram = meter.create_histogram("gen_ai.client.token.usage", "{token}")
    monkeypatch.setattr(llm_telemetry, "_token_usage", histogram)
    return reader


def _points(reader: InMemoryMetricReader) -> dict[str, int]:
    data = reader.get_metrics_data()
    assert data is not None
    found = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    attributes = dict(point.attributes or {})
                    key = f"{attributes['gen_ai.request.model']}/{attributes['gen_ai.token.type']}"
                    found[key] = int(point.sum)  # type: ignore[union-attr]
    return found


def test_a_chat_span_with_token_usage_and_no_content(
    model: LocalServer, tmp_path: Path, spans: InMemorySpanExporter, usage: InMemoryMetricReader
) -> None:
    settings = {URL_SETTING: f"{model.url}/v1"}
    run_step("llm", tmp_path, settings=settings, prompt="secret plans", model="m1", max_tokens=5)

    (span,) = spans.get_finished_spans()
    assert span.name == "chat m1"
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "m1"
    assert attributes["gen_ai.response.model"] == "m1-2025"
    assert attributes["gen_ai.request.max_tokens"] == 5
    assert attributes["gen_ai.usage.input_tokens"] == 7
    assert attributes["gen_ai.usage.output_tokens"] == 3
    assert not any("secret plans" in str(value) for value in attributes.values())
    assert _points(usage) == {"m1/input": 7, "m1/output": 3}


def test_content_is_captured_only_when_enabled_and_ollama_counts_too(
    model: LocalServer, tmp_path: Path, spans: InMemorySpanExporter, usage: InMemoryMetricReader
) -> None:
    settings = {
        URL_SETTING: model.url,
        PROVIDER_SETTING: "ollama",
        llm_telemetry.CAPTURE_SETTING: "true",
    }
    run_step("llm", tmp_path, settings=settings, prompt="hello", model="m2")

    (span,) = spans.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert "hello" in str(attributes["gen_ai.input.messages"])
    assert attributes["gen_ai.output.messages"] == "echo: hello"
    assert _points(usage) == {"m2/input": 4, "m2/output": 2}


def test_a_failed_call_is_an_error_span(tmp_path: Path, spans: InMemorySpanExporter) -> None:
    with pytest.raises(StepRunError):
        run_step("llm", tmp_path, settings={URL_SETTING: "http://127.0.0.1:9/v1"}, prompt="hi")
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
