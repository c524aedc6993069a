"""generate_embedding and similarity_search against an embeddings endpoint the test serves,
with vectors kept in the memory store (embedded: SQLite and PostgreSQL) and in the memory service
(over gRPC)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rustchain.domain.policy.model import Policy
from rustchain.platform.grpc.memory_client import GrpcMemoryClient
from rustchain.platform.storage.memory_store import MemoryStore, SqliteMemoryStore, TenantMemory
from rustchain.platform.storage.postgres_memory_store import PostgresMemoryStore
from rustchain.steps import default_registry
from rustchain.steps.support.runtime import (
    PolicyRefusedError,
    StepContext,
    StepRunError,
    parameters_of,
)
from tests.integration.conftest import postgres_url
from tests.integration.grpc_helpers import running_services
from tests.integration.http_fixtures import LocalServer, json_answer, serve
from tests.integration.postgres_databases import drop_tables, table_prefix

REGISTRY = default_registry(include_plugins=False)
LETTERS = "aeiourst"


def letter_vector(text: str) -> list[float]:
    """A small, meaningful embedding: how often each of eight letters occurs."""
    return [float(text.lower().count(c)) for c in LETTERS]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MemoryStore]:
    """The memory store the steps keep vectors in: SQLite, or PostgreSQL (this test's tables)."""
    if request.param == "sqlite":
        sqlite = SqliteMemoryStore(tmp_path / "memory.db")
        yield sqlite
        sqlite.close()
        return
    url, prefix = postgres_url(), table_prefix()
    postgres = PostgresMemoryStore(url, prefix)
    yield postgres
    postgres.close()
    drop_tables(url, prefix, "documents", "vectors")


@pytest.fixture
def embeddings() -> Iterator[LocalServer]:
    """An OpenAI-compatible (`/v1/embeddings`) and Ollama (`/api/embed`) embeddings endpoint."""

    def answer(method: str, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
        vectors = [letter_vector(t) for t in body["input"]]
        if path == "/v1/embeddings":
            data = [
                {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
            ]
            return json_answer({"data": data, "model": body["model"]})
        if path == "/api/embed":
            return json_answer({"model": body["model"], "embeddings": vectors})
        return json_answer({"error": "no such endpoint"}, 404)

    yield from serve(answer)


def policy_for(server: LocalServer, provider: str = "openai") -> Policy:
    endpoint = f"{server.url}/v1" if provider == "openai" else server.url
    return Policy.model_validate(
        {
            "embeddings": {
                "provider": provider,
                "endpoint": endpoint,
                "allowed_models": ["letters-*"],
            }
        }
    )


def context(
    workspace: Path, policy: Policy | None, memory: Any, tenant: str = "acme"
) -> StepContext:
    return StepContext(tenant, "m1", "s1", workspace, 10, policy=policy, memory=memory)


async def run(step_type: str, step_context: StepContext, **parameters: Any) -> Any:
    definition = REGISTRY.types[step_type]
    params = parameters_of(definition.parameters, parameters)
    return await definition.run(params, step_context)  # type: ignore[attr-defined]


TEXTS = {"fruit": "tangerine sorbet", "rocks": "sturdy quartz outcrop", "sea": "a blue ocean"}


def test_stored_embeddings_are_found_nearest_first(
    embeddings: LocalServer, tmp_path: Path, store: MemoryStore
) -> None:
    acme = context(tmp_path, policy_for(embeddings), TenantMemory(store, "acme"))

    async def scenario() -> tuple[Any, Any, Any]:
        made = [
            await run(
                "generate_embedding",
                acme,
                text=text,
                model="letters-8",
                collection="kb",
                id=doc_id,
                metadata={"topic": doc_id},
            )
            for doc_id, text in TEXTS.items()
        ]
        by_text = await run(
            "similarity_search", acme, query="tangerines", model="letters-8", database="kb", top_k=2
        )
        by_vector = await run(
            "similarity_search",
            acme,
            query_embedding=letter_vector("ocean"),
            database="kb",
            top_k=1,
        )
        return made, by_text, by_vector

    made, by_text, by_vector = asyncio.run(scenario())

    assert made[0]["embedding"] == letter_vector(TEXTS["fruit"])
    assert made[0]["dimensions"] == 8 and made[0]["stored"] == {"collection": "kb", "id": "fruit"}
    assert by_text["results"][0]["id"] == "fruit" and by_text["count"] == 2
    assert by_text["results"][0]["rank"] == 1 and by_text["results"][0]["text"] == TEXTS["fruit"]
    assert by_text["results"][0]["metadata"] == {"topic": "fruit"}
    assert by_text["results"][0]["score"] > by_text["results"][1]["score"]
    assert by_vector["results"][0]["id"] == "sea" and by_vector["count"] == 1


def test_a_tenant_never_finds_another_tenants_vectors(
    embeddings: LocalServer, tmp_path: Path, store: MemoryStore
) -> None:
    policy = policy_for(embeddings)

    async def scenario() -> Any:
        await run(
            "generate_embedding",
            context(tmp_path, policy, TenantMemory(store, "acme")),
            text="secret plans",
            model="letters-8",
            collection="kb",
        )
        other = context(tmp_path, policy, TenantMemory(store, "globex"), tenant="globex")
        return await run(
            "similarity_search", other, query="secret plans", model="letters-8", database="kb"
        )

    found = asyncio.run(scenario())

    assert found["results"] == []


def test_threshold_leaves_out_weak_matches(
    embeddings: LocalServer, tmp_path: Path, store: MemoryStore
) -> None:
    acme = context(tmp_path, policy_for(embeddings), TenantMemory(store, "acme"))

    async def scenario() -> Any:
        for doc_id, text in TEXTS.items():
            await run(
                "generate_embedding", acme, text=text, model="letters-8", collection="kb", id=doc_id
            )
        return await run(
            "similarity_search",
            acme,
            query_embedding=letter_vector(TEXTS["sea"]),
            database="kb",
            threshold=0.99,
        )

    found = asyncio.run(scenario())

    assert [r["id"] for r in found["results"]] == ["sea"]


def test_ollama_embeddings_are_read_from_its_own_api(
    embeddings: LocalServer, tmp_path: Path
) -> None:
    out = asyncio.run(
        run(
            "generate_embedding",
            context(tmp_path, policy_for(embeddings, "ollama"), None),
            text="sorbet",
            model="letters-8",
        )
    )

    assert out["embedding"] == letter_vector("sorbet") and out["stored"] is None
    assert embeddings.requests[0][1] == "/api/embed"


def test_a_model_the_policy_does_not_allow_is_refused_before_any_request(
    embeddings: LocalServer, tmp_path: Path
) -> None:
    step_context = context(tmp_path, policy_for(embeddings), None)

    with pytest.raises(PolicyRefusedError, match=r"embeddings.model"):
        asyncio.run(run("generate_embedding", step_context, text="x", model="gpt-embed"))
    with pytest.raises(PolicyRefusedError, match=r"embeddings.model"):
        asyncio.run(run("generate_embedding", context(tmp_path, None, None), text="x"))
    assert embeddings.requests == []


def test_without_an_endpoint_in_the_policy_nothing_is_embedded(tmp_path: Path) -> None:
    policy = Policy.model_validate({"embeddings": {"allowed_models": ["*"]}})

    with pytest.raises(StepRunError, match=r"embeddings.endpoint"):
        asyncio.run(run("generate_embedding", context(tmp_path, policy, None), text="x"))


def test_vectors_go_through_the_memory_service(embeddings: LocalServer, tmp_path: Path) -> None:
    async def scenario() -> tuple[Any, Any]:
        async with running_services(tmp_path, ("memory",)) as services:
            channel = services.channel("memory")
            acme = context(
                tmp_path, policy_for(embeddings), GrpcMemoryClient(channel, "memory", "acme")
            )
            for doc_id, text in TEXTS.items():
                await run(
                    "generate_embedding",
                    acme,
                    text=text,
                    model="letters-8",
                    collection="kb",
                    id=doc_id,
                )
            found = await run(
                "similarity_search", acme, query="quartz", model="letters-8", database="kb", top_k=1
            )
            globex = context(
                tmp_path,
                policy_for(embeddings),
                GrpcMemoryClient(channel, "memory", "globex"),
                tenant="globex",
            )
            theirs = await run(
                "similarity_search", globex, query="quartz", model="letters-8", database="kb"
            )
            return found, theirs

    found, theirs = asyncio.run(scenario())

    assert [r["id"] for r in found["results"]] == ["rocks"]
    assert theirs["results"] == []


def test_the_memory_service_refuses_a_vector_it_cannot_compare(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_services(tmp_path, ("memory",)) as services:
            client = GrpcMemoryClient(services.channel("memory"), "memory", "acme")
            with pytest.raises(StepRunError, match="finite numbers"):
                await client.add_vector("kb", None, [float("nan")], "x", {})

    asyncio.run(scenario())
