"""Embeddings from the endpoint the tenant's policy names (`embeddings`): OpenAI-compatible
(`POST {endpoint}/embeddings`) or Ollama (`POST {endpoint}/api/embed`).

The endpoint is the operator's, like the LLM endpoint, so it is reached directly; the model is
checked against `embeddings.allowed_models` before anything is sent.
"""

from __future__ import annotations

import functools
import ssl
from typing import TYPE_CHECKING, Any

from rustchain.domain.policy.checks import check_value
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.runtime import StepContext, StepRunError

if TYPE_CHECKING:
    import httpx

KEY_SETTING = "RUSTCHAIN_EMBEDDINGS_API_KEY"
MAX_DIMENSIONS = 16_384


async def embed(context: StepContext, model: str, text: str) -> list[float]:
    """The model's embedding of `text`, or a StepRunError naming the endpoint."""
    import httpx

    policy = context.enforced_policy.embeddings
    context.enforce(check_value, Sink.EMBEDDING_MODEL, model)
    if policy.endpoint is None:
        raise StepRunError("the tenant's policy names no embeddings endpoint (embeddings.endpoint)")
    if len(text) > policy.max_text_chars:
        raise StepRunError(
            f"text has {len(text)} characters, more than embeddings.max_text_chars "
            f"({policy.max_text_chars})"
        )
    base = policy.endpoint.rstrip("/")
    if policy.provider == "ollama":
        url = f"{base.removesuffix('/v1')}/api/embed"
    else:
        url = f"{base}/embeddings"
    key = context.settings.get(KEY_SETTING, "")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        async with httpx.AsyncClient(
            timeout=context.timeout_seconds, verify=_ssl_context(), trust_env=False
        ) as client:
            response = await client.post(
                url, json={"model": model, "input": [text]}, headers=headers
            )
    except httpx.HTTPError as error:
        raise StepRunError(f"embeddings endpoint {url} unreachable: {error}") from None
    if response.status_code != 200:
        raise StepRunError(
            f"embeddings endpoint {url} answered {response.status_code}: {response.text[:300]}"
        )
    return _vector(response, url, policy.provider)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~20 ms; a step makes one client, so the context is shared.
    import httpx

    return httpx.create_ssl_context(trust_env=False)


def _vector(response: httpx.Response, url: str, provider: str) -> list[float]:
    try:
        answer: Any = response.json()
        raw = answer["embeddings"][0] if provider == "ollama" else answer["data"][0]["embedding"]
        vector = [float(x) for x in raw]
    except (ValueError, KeyError, IndexError, TypeError):
        raise StepRunError(f"embeddings endpoint {url} gave an answer without a vector") from None
    if not 0 < len(vector) <= MAX_DIMENSIONS or not all(abs(x) < float("inf") for x in vector):
        raise StepRunError(f"embeddings endpoint {url} gave a vector that cannot be used")
    return vector
