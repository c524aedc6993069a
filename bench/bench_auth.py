"""Authentication overhead per RPC (issue 7): p50 of a memory Search with and without tokens."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from rustchain.cli.serve import serve
from rustchain.domain.credentials import Claims, Role
from rustchain.generated.rustchain.memory.v1 import memory_pb2, memory_pb2_grpc
from rustchain.platform.grpc_client import open_channel
from rustchain.platform.tokens import issue, signing_key

CALLS = 1000


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


def main() -> None:
    """Print p50 and p99 per RPC with and without the interceptor."""
    with tempfile.TemporaryDirectory() as open_home, tempfile.TemporaryDirectory() as auth_home:
        plain = asyncio.run(_latencies(Path(open_home), None))
        key = signing_key(Path(auth_home), {}, create=True)
        assert key is not None
        token = issue(key, Claims(sub="bench", role=Role.TENANT, tenant="bench"))
        authed = asyncio.run(_latencies(Path(auth_home), token))
    for name, samples in (("without interceptor", plain), ("with JWT interceptor", authed)):
        ordered = sorted(samples)
        p99 = ordered[int(len(ordered) * 0.99) - 1]
        print(
            f"memory Search {name}: p50 {statistics.median(samples) * 1e3:.3f} ms, "
            f"p99 {p99 * 1e3:.3f} ms"
        )
    overhead = statistics.median(authed) - statistics.median(plain)
    print(f"authentication adds {overhead * 1e6:.0f} us per RPC at p50")


if __name__ == "__main__":
    main()
