"""Per-step cost of the data step types (issue 14: SQL, Redis, embeddings, model inference) on a
trivial input, beside the `noop` step: what each library and its checks add to one step.

Servers: SQLite files in a temporary workspace, the machine's PostgreSQL (127.0.0.1:5432/test)
and Redis (127.0.0.1:6379), a loopback HTTP server standing in for the embeddings and LLM
endpoints. A figure whose server is unreachable is reported as skipped.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import redis

from rustchain.domain.policy.model import Policy
from rustchain.platform.storage.memory_store import SqliteMemoryStore, TenantMemory
from rustchain.steps import default_registry
from rustchain.steps.support.llm_client import URL_SETTING
from rustchain.steps.support.runtime import StepContext, parameters_of

ROUNDS = 200
REGISTRY = default_registry(include_plugins=False)
_VECTOR = [0.25] * 768
_BODY = json.dumps(
    {
        "data": [{"embedding": _VECTOR}],
        "choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
        "usage": {"total_tokens": 3},
    }
).encode()
_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
    + f"Content-Length: {len(_BODY)}\r\n\r\n".encode()
    + _BODY
)


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    await reader.readexactly(length)
    writer.write(_ANSWER)
    await writer.drain()
    writer.close()


async def _ms_per_step(step_type: str, context: StepContext, **parameters: Any) -> float:
    definition = REGISTRY.types[step_type]
    run = definition.run  # type: ignore[attr-defined]
    for _ in range(5):  # warm up: imports, connections' first costs
        await run(parameters_of(definition.parameters, parameters), context)
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        await run(parameters_of(definition.parameters, parameters), context)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def _reachable() -> tuple[bool, bool]:
    try:
        with psycopg.connect("postgresql://postgres@127.0.0.1/test", connect_timeout=2):
            postgres = True
    except psycopg.Error:
        postgres = False
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping()
        has_redis = True
    except redis.RedisError:
        has_redis = False
    return postgres, has_redis


async def _figures(workspace: Path) -> list[tuple[str, float | None]]:
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    policy = Policy.model_validate(
        {
            "databases": [
                {
                    "name": "app",
                    "engine": "sqlite",
                    "path": "app.db",
                    "statements": ["read", "write", "schema", "other"],
                },
                {"name": "pg", "engine": "postgresql", "host": "127.0.0.1", "database": "test"},
            ],
            "redis": {
                "servers": [
                    {
                        "name": "default",
                        "host": "127.0.0.1",
                        "key_prefixes": [prefix],
                        "write": True,
                    }
                ]
            },
            "embeddings": {"endpoint": f"{url}/v1", "allowed_models": ["*"]},
        }
    )
    store = SqliteMemoryStore(workspace / "memory" / "memory.db")
    memory = TenantMemory(store, "bench")
    context = StepContext(
        "bench",
        "m",
        "s",
        workspace,
        30,
        settings={URL_SETTING: f"{url}/v1"},
        memory=memory,
        policy=policy,
    )
    (workspace / "migrations").mkdir()
    (workspace / "migrations" / "1_table.sql").write_text("CREATE TABLE t (a INTEGER);")
    postgres, has_redis = _reachable()
    for i in range(100):
        await memory.add_vector("kb", f"d{i}", [float((i * j) % 7) for j in range(768)], "x", {})
    figures: list[tuple[str, float | None]] = [
        ("noop (baseline)", await _ms_per_step("noop", context)),
        ("sql_query, in-memory SQLite", await _ms_per_step("sql_query", context, query="SELECT 1")),
        (
            "db_migrate, SQLite, nothing new",
            await _ms_per_step("db_migrate", context, database="app"),
        ),
        (
            "sql_query, SQLite file",
            await _ms_per_step(
                "sql_query", context, database="app", query="SELECT count(*) FROM t"
            ),
        ),
        (
            "db_backup, SQLite file",
            await _ms_per_step(
                "db_backup", context, database="app", destination="copy.db", overwrite=True
            ),
        ),
        (
            "sql_query, PostgreSQL (connect + query)",
            await _ms_per_step(
                "sql_query",
                context,
                database="pg",
                query="SELECT 1",
                connection="postgresql://postgres@127.0.0.1/test",
            )
            if postgres
            else None,
        ),
        (
            "redis_set",
            await _ms_per_step("redis_set", context, key=f"{prefix}k", value="v")
            if has_redis
            else None,
        ),
        (
            "redis_get",
            await _ms_per_step("redis_get", context, key=f"{prefix}k") if has_redis else None,
        ),
        (
            "generate_embedding (768 floats, loopback endpoint)",
            await _ms_per_step("generate_embedding", context, text="hello", model="m"),
        ),
        (
            "similarity_search (100 stored vectors of 768)",
            await _ms_per_step(
                "similarity_search", context, query_embedding=_VECTOR, database="kb"
            ),
        ),
        (
            "model_inference (loopback endpoint)",
            await _ms_per_step("model_inference", context, prompt="hi", model="m"),
        ),
    ]
    if has_redis:
        redis.Redis(host="127.0.0.1", port=6379).delete(f"{prefix}k")
    store.close()
    server.close()
    await server.wait_closed()
    return figures


def main() -> None:
    """Print ms per step (median of ROUNDS) for each data step type, beside noop."""
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        figures = asyncio.run(_figures(Path(folder)))
    baseline = figures[0][1] or 0.0
    print(f"{'step type (trivial input)':<52} {'ms/step':>9} {'x noop':>9}")
    for name, ms in figures:
        if ms is None:
            print(f"{name:<52} {'skipped':>9}   (server unreachable)")
        else:
            print(f"{name:<52} {ms:>9.3f} {ms / baseline if baseline else 0:>9.0f}")
