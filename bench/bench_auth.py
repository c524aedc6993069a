"""Authentication overhead (issue 7): p50 of a memory Search with and without tokens, and of a
NATS connection admitted by the auth callout against one on an open server; and the cost of
verifying one token, Ed25519 (what the deployment uses) against HS256 (what it used before)."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from rustchain.cli.serve import serve
from rustchain.domain.access.credentials import Claims, Role
from rustchain.generated.rustchain.memory.v1 import memory_pb2, memory_pb2_grpc
from rustchain.platform.credentials.signing_keys import TOKEN_KEYS, VERDICT_KEYS, ensure_key_pair
from rustchain.platform.credentials.tokens import issue, verify
from rustchain.platform.grpc.client import open_channel
from rustchain.platform.nats.auth_callout import callout_secrets, serve_callout
from rustchain.platform.nats.jetstream import NatsCredentials, connect
from rustchain.platform.nats.server import NatsServer, NatsServerSettings

CALLS = 1000
CONNECTS = 200
VERIFIES = 5000


def _home_key(home: Path) -> Ed25519PrivateKey:
    ensure_key_pair(home, VERDICT_KEYS)
    return ensure_key_pair(home, TOKEN_KEYS)[0]


def _verify_costs() -> tuple[float, float]:
    """Microseconds per verification (median of batches): Ed25519, then HS256."""
    claims = Claims(sub="bench", role=Role.TENANT, tenant="bench")
    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    ed_token = issue(private, claims)
    secret = "bench-shared-key-" + "k" * 48
    hs_token = jwt.encode(claims.model_dump(mode="json", exclude_none=True), secret, "HS256")

    def per_call(check: Callable[[], object]) -> float:
        batches = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(VERIFIES // 5):
                check()
            batches.append((time.perf_counter() - started) / (VERIFIES // 5))
        return statistics.median(batches) * 1e6

    ed = per_call(lambda: verify(public, ed_token))
    hs = per_call(lambda: jwt.decode(hs_token, secret, algorithms=["HS256"]))
    return ed, hs


async def _latencies(home: Path, token: str | None) -> list[float]:
    stop = asyncio.Event()
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server = asyncio.ensure_future(
        serve("memory", 0, {"RUSTCHAIN_HOME": str(home)}, {}, stop, bound.set_result)
    )
    port = await asyncio.wait_for(bound, 20)
    metadata = [("x-rustchain-tenant", "bench")]
    if token is not None:
        metadata.append(("authorization", f"Bearer {token}"))
    samples = []
    async with open_channel(f"127.0.0.1:{port}") as channel:
        memory = memory_pb2_grpc.MemoryServiceStub(channel)
        await memory.Put(
            memory_pb2.PutRequest(collection="c", content="hello world"), metadata=metadata
        )
        request = memory_pb2.SearchRequest(collection="c", query="hello", limit=1)
        for _ in range(CALLS):
            started = time.perf_counter()
            await memory.Search(request, metadata=metadata)
            samples.append(time.perf_counter() - started)
    stop.set()
    await server
    return samples


async def _connect_latencies(url: str, token: str | None) -> list[float]:
    samples = []
    credentials = NatsCredentials.of_token(token)
    for _ in range(CONNECTS):
        started = time.perf_counter()
        client = await connect(url, credentials=credentials)
        samples.append(time.perf_counter() - started)
        await client.close()
    return samples


async def _callout_latencies(
    home: Path, url: str, token: str, key: Ed25519PublicKey
) -> list[float]:
    secrets = callout_secrets(home)
    assert secrets is not None
    stop, ready = asyncio.Event(), asyncio.Event()
    callout = asyncio.ensure_future(serve_callout(url, secrets, key, stop, ready))
    await asyncio.wait_for(ready.wait(), 20)
    try:
        return await _connect_latencies(url, token)
    finally:
        stop.set()
        await callout


def _nats_connects() -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory() as open_home, tempfile.TemporaryDirectory() as auth_home:
        home = Path(auth_home)
        open_server = NatsServer(NatsServerSettings(store_dir=Path(open_home) / "nats"))
        secured = NatsServer(
            NatsServerSettings(store_dir=home / "nats", callout=callout_secrets(home, create=True))
        )
        open_server.start()
        secured.start()
        try:
            plain = asyncio.run(_connect_latencies(open_server.url, None))
            key = _home_key(home)
            token = issue(key, Claims(sub="bench", role=Role.TENANT, tenant="bench"))
            admitted = asyncio.run(_callout_latencies(home, secured.url, token, key.public_key()))
        finally:
            open_server.stop()
            secured.stop()
    return plain, admitted


def main() -> None:
    """Print p50 and p99 per RPC with and without the interceptor, and per NATS connect."""
    with tempfile.TemporaryDirectory() as open_home, tempfile.TemporaryDirectory() as auth_home:
        plain = asyncio.run(_latencies(Path(open_home), None))
        key = _home_key(Path(auth_home))
        token = issue(key, Claims(sub="bench", role=Role.TENANT, tenant="bench"))
        authed = asyncio.run(_latencies(Path(auth_home), token))
    for name, samples in (("without interceptor", plain), ("with Ed25519 JWT interceptor", authed)):
        ordered = sorted(samples)
        p99 = ordered[int(len(ordered) * 0.99) - 1]
        print(
            f"memory Search {name}: p50 {statistics.median(samples) * 1e3:.3f} ms, "
            f"p99 {p99 * 1e3:.3f} ms"
        )
    overhead = statistics.median(authed) - statistics.median(plain)
    print(f"authentication adds {overhead * 1e6:.0f} us per RPC at p50")
    ed, hs = _verify_costs()
    print(f"one token verification: Ed25519 {ed:.1f} us, HS256 {hs:.1f} us ({VERIFIES} each)")
    open_connects, admitted = _nats_connects()
    print(
        f"NATS connect: p50 {statistics.median(open_connects) * 1e3:.2f} ms on an open server,"
        f" {statistics.median(admitted) * 1e3:.2f} ms admitted by the auth callout"
        f" ({CONNECTS} connects each; once per connection, not per message)"
    )


if __name__ == "__main__":
    main()
