"""Chat completions over HTTP for the llm, chain and agent steps: OpenAI-compatible or Ollama."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rustchain.domain.policy.checks import check_model, check_tokens
from rustchain.steps.support.runtime import StepContext, StepRunError

URL_SETTING = "RUSTCHAIN_LLM_URL"
MODEL_SETTING = "RUSTCHAIN_LLM_MODEL"
KEY_SETTING = "RUSTCHAIN_LLM_API_KEY"
PROVIDER_SETTING = "RUSTCHAIN_LLM_PROVIDER"
DEFAULT_URL = "http://127.0.0.1:11434/v1"
DEFAULT_MODEL = "llama3.2"


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~20 ms per client (most of a loopback call): built once, with
    # the environment's SSL_CERT_FILE and SSL_CERT_DIR as httpx would read them.
    import httpx

    context: ssl.SSLContext = httpx.create_ssl_context(trust_env=True)
    return context


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion: the messages and how to sample."""

    messages: list[dict[str, str]]
    model: str | None = None
    provider: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None


def _settings(settings: Mapping[str, str], request: ChatRequest) -> tuple[str, str, str, str]:
    url = settings.get(URL_SETTING, DEFAULT_URL).rstrip("/")
    model = request.model or settings.get(MODEL_SETTING, DEFAULT_MODEL)
    provider = (request.provider or settings.get(PROVIDER_SETTING) or "openai").lower()
    return url, model, provider, settings.get(KEY_SETTING, "")


@dataclass(frozen=True)
class Completion:
    """A model's answer with what it cost and why it stopped (as the endpoint reported them)."""

    text: str
    model: str
    total_tokens: int | None
    finish_reason: str | None


async def chat(request: ChatRequest, context: StepContext) -> str:
    """The model's answer, or a StepRunError that names the endpoint and what went wrong."""
    return (await complete(request, context)).text


async def complete(request: ChatRequest, context: StepContext) -> Completion:
    """The model's answer and its usage, or a StepRunError naming the endpoint."""
    url, model, provider, key = _settings(context.settings, request)
    context.check(check_model, model)
    if request.max_tokens is not None:
        context.check(check_tokens, request.max_tokens)
    body: dict[str, Any]
    if provider == "ollama":
        # Ollama serves its own API at the root and the OpenAI-compatible one under /v1.
        endpoint = f"{url.removesuffix('/v1')}/api/chat"
        options = {"temperature": request.temperature, "num_predict": request.max_tokens}
        body = {"model": model, "messages": request.messages, "stream": False}
        body["options"] = {k: v for k, v in options.items() if v is not None}
    elif provider in {"openai", "openai-compatible", "shimmy", "vllm", "llamacpp"}:
        endpoint = f"{url}/chat/completions"
        body = {"model": model, "messages": request.messages}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
    else:
        raise StepRunError(f"unknown LLM provider '{provider}'; use 'openai' or 'ollama'")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    # OpenTelemetry loads when a model is called, not when a mission is validated.
    from rustchain.steps.support.llm_telemetry import capture_content, chat_span, record_answer

    capture = capture_content(context.settings)
    with chat_span(provider, model, request.messages, request.max_tokens, capture) as span:
        answer = await _post(endpoint, body, headers, context.timeout_seconds)
        completion = _completion(answer, endpoint, provider, model)
        record_answer(span, answer, provider, model, completion.text, capture)
    return completion


async def _post(
    endpoint: str, body: dict[str, Any], headers: dict[str, str], timeout: float
) -> Any:
    """The endpoint's JSON answer, or a StepRunError naming the endpoint."""
    # Imported when a step runs, not when a mission is compiled: `rustchain validate` needs none.
    import httpx

    try:
        async with httpx.AsyncClient(timeout=timeout, verify=_ssl_context()) as client:
            response = await client.post(endpoint, json=body, headers=headers)
    except httpx.HTTPError as error:
        raise StepRunError(f"LLM endpoint {endpoint} unreachable: {error}") from None
    if response.status_code != 200:
        raise StepRunError(
            f"LLM endpoint {endpoint} answered {response.status_code}: {response.text[:300]}"
        )
    try:
        return response.json()
    except ValueError:
        raise StepRunError(f"LLM endpoint {endpoint} gave an answer that is not JSON") from None


def _completion(answer: Any, endpoint: str, provider: str, model: str) -> Completion:
    """The message, usage and stop reason of an answer in the provider's shape."""
    try:
        if provider == "ollama":
            counts = [answer.get("prompt_eval_count"), answer.get("eval_count")]
            tokens = sum(c for c in counts if isinstance(c, int)) if any(counts) else None
            text = str(answer["message"]["content"])
            return Completion(text, model, tokens, answer.get("done_reason"))
        choice = answer["choices"][0]
        usage = answer.get("usage") or {}
        total = usage.get("total_tokens")
        return Completion(
            str(choice["message"]["content"]),
            model,
            total if isinstance(total, int) else None,
            choice.get("finish_reason"),
        )
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise StepRunError(f"LLM endpoint {endpoint} gave an answer without a message") from None
