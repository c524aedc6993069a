"""Memory and trainer on PostgreSQL (issue 15, part 3), side by side with the SQLite defaults.

Memory: put throughput (one document per call, as the service makes them; then from 4 threads,
as a server's workers or several replicas would), search latency over 10,000 documents, and
nearest-neighbour latency, on SQLite and on PostgreSQL. Trainer: trajectories per second with
one and with two trainer processes sharing the durable consumer and one PostgreSQL database.
PostgreSQL is the server at RUSTCHAIN_TEST_POSTGRES_URL (default: the test server).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from tests.conditions import wait_until_sync
from tests.integration.trainer_process import finish_missions, start_trainer

from rustchain.domain.events.names import stream_name
from rustchain.platform.nats.jetstream import connect
from rustchain.platform.nats.server import NatsServer, NatsServerSettings
from rustchain.platform.storage.memory_store import MemoryStore, SqliteMemoryStore
from rustchain.platform.storage.postgres_memory_store import PostgresMemoryStore
from rustchain.trainer.consumer import DURABLE
from rustchain.trainer.postgres_trajectory_store import PostgresTrajectoryStore

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = 10_000
PUTS = 1_000
THREADS = 4
SEARCHES = 200
VECTORS = 2_000
DIMENSIONS = 128
NEARESTS = 30
MISSIONS = 150
VOCABULARY = [f"w{n}" for n in range(5_000)]
MISSION = """\
version: "1.0"
name: bench
steps:
  - {id: one, name: One, step_type: noop, parameters: {message: "first"}}
  - {id: two, name: Two, step_type: noop, depends_on: [one], parameters: {message: "{one}"}}
  - {id: three, name: Three, step_type: noop, depends_on: [two], parameters: {message: "x"}}
"""


def _postgres_url() -> str | None:
    url = os.environ.get("RUSTCHAIN_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    try:
        with psycopg.connect(url, connect_timeout=3):
            return url
    except psycopg.Error:
        return None


def _drop(url: str, prefix: str, *suffixes: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        for suffix in suffixes:
            connection.execute(f"DROP TABLE IF EXISTS {prefix}_{suffix}")


def _analyze(url: str, prefix: str) -> None:
    """What autovacuum does within a minute of a bulk load: without statistics the planner takes
    the fresh table for one row and scans the tenant's collection by its key."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"ANALYZE {prefix}_documents")


def _text(rng: random.Random, words: int) -> str:
    # Zipf-like: a few words are common, most are rare, as in prose.
    return " ".join(rng.choices(VOCABULARY, weights=_WEIGHTS, k=words))


_WEIGHTS = [1.0 / (rank + 1) for rank in range(len(VOCABULARY))]


def _millis(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return 1000 * statistics.median(ordered), 1000 * ordered[int(0.95 * (len(ordered) - 1))]


def _timed(call: Callable[[], object], times: int) -> list[float]:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def _put_rates(store: MemoryStore, texts: list[str]) -> tuple[float, float]:
    """Documents stored per second, one per call: from one thread, then from THREADS."""
    started = time.perf_counter()
    for n, text in enumerate(texts[:PUTS]):
        store.put("bench", "puts", text, f"p{n}", {"n": n})
    sequential = PUTS / (time.perf_counter() - started)
    started = time.perf_counter()
    _from_threads(lambda n: store.put("bench", "puts4", texts[n], f"p{n}", {}), PUTS)
    return sequential, PUTS / (time.perf_counter() - started)


def _from_threads(call: Callable[[int], object], count: int) -> None:
    def share(first: int) -> None:
        for n in range(first, count, THREADS):
            call(n)

    threads = [threading.Thread(target=share, args=(k,)) for k in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _read_latencies(
    store: MemoryStore, texts: list[str], rng: random.Random, settle: Callable[[], object]
) -> list[float]:
    """Median and p95 milliseconds of a search over DOCUMENTS and of a nearest over VECTORS
    (loaded from THREADS threads first)."""
    _from_threads(lambda n: store.put("bench", "notes", texts[n], f"d{n}", {"n": n}), DOCUMENTS)
    store.put("other", "notes", texts[0], "theirs", {})
    vectors = [[rng.gauss(0, 1) for _ in range(DIMENSIONS)] for _ in range(VECTORS)]
    _from_threads(
        lambda n: store.put_vector("bench", "embeddings", f"v{n}", vectors[n], "text", {}),
        VECTORS,
    )
    settle()
    queries = iter(
        [" ".join(rng.sample(VOCABULARY[:1000], rng.randint(1, 3))) for _ in range(SEARCHES)]
    )
    searches = _timed(lambda: store.search("bench", "notes", next(queries), 10), SEARCHES)
    probe = vectors[7]
    nearest = _timed(lambda: store.nearest("bench", "embeddings", probe, 10), NEARESTS)
    return [*_millis(searches), *_millis(nearest)]


FIGURES = ("put/s", f"put/s x{THREADS}", "search ms", "search p95", "nearest ms", "nearest p95")


def bench_memory(home: Path, url: str | None) -> None:
    """Print the memory figures of both stores side by side."""
    rng = random.Random(15)
    texts = [_text(rng, 40) for _ in range(DOCUMENTS)]
    columns: dict[str, list[float]] = {}
    on_disk = SqliteMemoryStore(home / "memory.sqlite3")
    # Reads do not depend on fsync: SQLite's corpus is loaded on tmpfs, or the load alone
    # (a commit and an fsync per document) would take the minute this bench may use.
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as shm:
        in_memory = SqliteMemoryStore(Path(shm) / "memory.sqlite3")
        try:
            columns["SQLite"] = [
                *_put_rates(on_disk, texts),
                *_read_latencies(in_memory, texts, rng, lambda: None),
            ]
        finally:
            on_disk.close()
            in_memory.close()
    if url is not None:
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        postgres = PostgresMemoryStore(url, prefix)
        try:
            columns["PostgreSQL"] = [
                *_put_rates(postgres, texts),
                *_read_latencies(postgres, texts, rng, lambda: _analyze(url, prefix)),
            ]
        finally:
            postgres.close()
            _drop(url, prefix, "documents", "vectors")
    print(
        f"memory: puts of 40-word documents ({PUTS:,}); searches of 1-3 words over"
        f" {DOCUMENTS:,} of them (limit 10); nearest of {VECTORS:,} vectors of"
        f" {DIMENSIONS} dimensions; {os.cpu_count()} cores"
    )
    print(f"{'':<14}" + "".join(f"{name:>14}" for name in columns))
    for n, figure in enumerate(FIGURES):
        print(f"{figure:<14}" + "".join(f"{c[n]:>14,.2f}" for c in columns.values()))
    if url is None:
        print("PostgreSQL    not measured: no server at RUSTCHAIN_TEST_POSTGRES_URL")
    else:
        print("(PostgreSQL searched after ANALYZE of the loaded table, as autovacuum makes it)")


def _trajectories_per_second(nats_url: str, url: str, trainers: int) -> float:
    """Trajectories/s from the first recorded to the last, with `trainers` processes."""
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    PostgresTrajectoryStore(url, prefix).close()
    processes = [start_trainer(nats_url, url, prefix, 30, REPO) for _ in range(trainers)]
    first_at: tuple[float, int] | None = None
    try:
        with psycopg.connect(url, autocommit=True) as connection:

            def recorded_all() -> bool:
                nonlocal first_at
                row = connection.execute(f"SELECT count(*) FROM {prefix}_trajectories").fetchone()
                count = int(row[0]) if row else 0
                if count and first_at is None:
                    first_at = (time.perf_counter(), count)
                return count >= MISSIONS

            wait_until_sync(recorded_all, 120, f"{trainers} trainer(s) recorded every mission")
        finished = time.perf_counter()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()
        _drop(url, prefix, "trajectories", "deliveries")
        asyncio.run(_forget_durable(nats_url))
    assert first_at is not None  # every trajectory was recorded, so a first one was seen
    return (MISSIONS - first_at[1]) / max(finished - first_at[0], 1e-9)


async def _forget_durable(nats_url: str) -> None:
    """Delete the durable consumer, so that the next run reads the stream from the start."""
    client = await connect(nats_url)
    try:
        await client.jetstream().delete_consumer(stream_name("bench"), DURABLE)
    finally:
        await client.close()


def bench_trainers(home: Path, url: str | None) -> None:
    """Print trajectories/s with one and with two trainer processes."""
    if url is None:
        print("trainer       not measured: no server at RUSTCHAIN_TEST_POSTGRES_URL")
        return
    server = NatsServer(NatsServerSettings(store_dir=home / "nats"))
    server.start()
    try:
        finish_missions(home, server.url, MISSION, MISSIONS, tenant="bench")
        rates = {n: _trajectories_per_second(server.url, url, n) for n in (1, 2)}
    finally:
        server.stop()
    print(
        f"trainer: {MISSIONS} finished 3-step missions in JetStream, trajectories on PostgreSQL;"
        f" {os.cpu_count()} cores"
    )
    print(f"{'trainers':<14}{'1':>14}{'2':>14}")
    print(f"{'trajectories/s':<14}{rates[1]:>14,.0f}{rates[2]:>14,.0f}")


def main() -> None:
    """Print the memory and trainer figures."""
    url = _postgres_url()
    with tempfile.TemporaryDirectory() as folder:
        bench_memory(Path(folder), url)
        bench_trainers(Path(folder), url)


if __name__ == "__main__":
    main()
