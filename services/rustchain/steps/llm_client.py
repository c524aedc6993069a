"""Chat completions over HTTP for the llm, chain and agent steps: OpenAI-compatible or Ollama."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rustchain.domain.policy_checks import check_model, check_tokens
from rustchain.steps.llm_telemetry import capture_content, chat_span, record_answer
from rustchain.steps.runtime import StepContext, StepRunError

URL_SETTING = "RUSTCHAIN_LLM_URL"
MODEL_SETTING = "RUSTCHAIN_LLM_MODEL"
KEY_SETTING = "RUSTCHAIN_LLM_API_KEY"
PROVIDER_SETTING = "RUSTCHAIN_LLM_PROVIDER"
DEFAULT_URL = "http://127.0.0.1:11434/v1"
DEFAULT_MODEL = "llama3.2"


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


async def chat(request: ChatRequest, context: StepContext) -> str:
    """The model's answer, or a StepRunError that names the endpoint and what went wrong."""
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
    capture = capture_content(context.settings)
    with chat_span(provider, model, request.messages, request.max_tokens, capture) as span:
        text, answer = await _post(endpoint, body, headers, provider, context.timeout_seconds)
        record_answer(span, answer, provider, model, text, capture)
    return text


async def _post(
    endpoint: str, body: dict[str, Any], headers: dict[str, str], provider: str, timeout: float
) -> tuple[str, Any]:
    # Imported when a step runs, not when a mission is compiled: `rustchain validate` needs none.
    import httpx

    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.post(endpoint, json=body, headers=headers)
    except httpx.HTTPError as error:
        raise StepRunError(f"LLM endpoint {endpoint} unreachable: {error}") from None
    if response.status_code != 200:
        raise StepRunError(
            f"LLM endpoint {endpoint} answered {response.status_code}: {response.text[:300]}"
        )
    try:
        answer = response.json()
        if provider == "ollama":
            return str(answer["message"]["content"]), answer
        return str(answer["choices"][0]["message"]["content"]), answer
    except (ValueError, KeyError, IndexError, TypeError):
        raise StepRunError(f"LLM endpoint {endpoint} gave an answer without a message") from None
