"""The GenAI telemetry of a chat completion: a `chat {model}` client span with the semantic
conventions' `gen_ai.*` attributes and token usage, and the `gen_ai.client.token.usage` metric.

Prompts and answers are recorded only when the `RUSTCHAIN_LLM_CAPTURE_CONTENT` setting is true:
they may hold what a tenant would not have in a tracing backend. Without a configured provider the
OpenTelemetry API makes all of this a no-op."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, SpanKind

CAPTURE_SETTING = "RUSTCHAIN_LLM_CAPTURE_CONTENT"
_tracer = trace.get_tracer("rustchain.steps.llm")
_token_usage = metrics.get_meter("rustchain.steps.llm").create_histogram(
    "gen_ai.client.token.usage", "{token}", "Tokens used by llm steps, by model and type"
)


def capture_content(settings: Mapping[str, str]) -> bool:
    """Whether prompts and answers go on the span."""
    return settings.get(CAPTURE_SETTING, "").strip().lower() == "true"


@contextmanager
def chat_span(
    provider: str, model: str, messages: list[dict[str, str]], max_tokens: int | None, capture: bool
) -> Iterator[Span]:
    """The span of one chat completion (an error raised in the block marks it failed)."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
    }
    if max_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = max_tokens
    if capture:
        attributes["gen_ai.input.messages"] = json.dumps(messages, ensure_ascii=False)
    with _tracer.start_as_current_span(
        f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        yield span


def _usage(answer: Mapping[str, Any], provider: str) -> tuple[int | None, int | None]:
    if provider == "ollama":
        return answer.get("prompt_eval_count"), answer.get("eval_count")
    usage = answer.get("usage") or {}
    return usage.get("prompt_tokens"), usage.get("completion_tokens")


def record_answer(
    span: Span, answer: Any, provider: str, model: str, text: str, capture: bool
) -> None:
    """Put the answer's model and token usage on the span and the usage metric."""
    if not isinstance(answer, Mapping):
        return
    served = str(answer.get("model") or model)
    span.set_attribute("gen_ai.response.model", served)
    if capture:
        span.set_attribute("gen_ai.output.messages", text)
    labels = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
    }
    for kind, count in zip(("input", "output"), _usage(answer, provider), strict=True):
        if isinstance(count, int):
            span.set_attribute(f"gen_ai.usage.{kind}_tokens", count)
            _token_usage.record(count, {**labels, "gen_ai.token.type": kind})
