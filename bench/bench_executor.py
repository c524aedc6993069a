"""Executor figures (issue 5): per-step orchestration overhead, wide-DAG throughput and latency
of concurrent missions, each beside the raw cost of the durable writes they need, and LangGraph
with its SQLite checkpointer (durability="sync") running the same 1,000-step chain.

Goals: per-step overhead within 3x of the raw durable writes, and at least 5x faster than
LangGraph with the same durability (nothing acknowledged that a crash can lose).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rustchain.bootstrap.executor import build_executor
from rustchain.domain.access.quotas import TenantQuotas
from rustchain.domain.events.envelope import EventDraft
from rustchain.domain.plans.compiler import compile_mission
from rustchain.domain.plans.plan import Plan
from rustchain.executor.application import ExecutorApplication
from rustchain.platform.storage.event_store import (
    EventStoreSettings,
    RecorderEventStore,
    open_event_store,
)
from rustchain.steps import default_registry

REGISTRY = default_registry(include_plugins=False)
CHAIN = 1_000


LISTED = 2000


def _plan(steps: list[str], parallel: int = 4) -> Plan:
    text = f'version: "1.0"\nname: bench\nconfig: {{max_parallel_steps: {parallel}}}\nsteps:\n'
    compilation = compile_mission((text + "\n".join(steps) + "\n").encode(), "bench.yaml", REGISTRY)
    assert compilation.plan is not None, compilation.errors[:3]
    return compilation.plan


def chain_plan(size: int) -> Plan:
    """A chain of noop steps."""
    return _plan(
        [
            f"  - {{id: s{i}, step_type: noop{f', depends_on: [s{i - 1}]' if i else ''}}}"
            for i in range(size)
        ]
    )


def wide_plan(size: int) -> Plan:
    """Independent noop steps."""
    return _plan([f"  - {{id: s{i}, step_type: noop}}" for i in range(size)], parallel=64)


def _executor(
    home: Path, store: RecorderEventStore, quotas: TenantQuotas | None = None
) -> ExecutorApplication:
    """The executor as the bootstrap builds it, with the bench's registry."""
    return build_executor({"RUSTCHAIN_HOME": str(home)}, store, registry=REGISTRY, quotas=quotas)


def _store(home: Path, name: str) -> RecorderEventStore:
    return open_event_store(EventStoreSettings(name=name, home=home))


def _draft(mission: str, version: int, kind: str) -> EventDraft:
    return EventDraft(
        id=str(uuid.uuid4()),
        tenant="bench",
        mission_id=mission,
        service="executor",
        aggregate_id=mission,
        aggregate_version=version,
        type=kind,
        occurred_at=datetime.now(UTC),
        payload={"step_id": f"s{version}", "attempt": 1},
    )


def raw_durable_writes(home: Path, steps: int) -> tuple[float, float]:
    """Seconds per step for two appends (start, result), and for one append of both."""
    store = _store(home, "raw")
    started = time.perf_counter()
    for i in range(steps):
        store.append([_draft("two", 2 * i + 1, "StepStarted")])
        store.append([_draft("two", 2 * i + 2, "StepSucceeded")])
    two = (time.perf_counter() - started) / steps
    started = time.perf_counter()
    for i in range(steps):
        store.append(
            [_draft("one", 2 * i + 1, "StepSucceeded"), _draft("one", 2 * i + 2, "StepStarted")]
        )
    one = (time.perf_counter() - started) / steps
    store.close()
    return two, one


def run_plan(home: Path, plan: Plan, name: str) -> float:
    """Seconds to run a plan from start to finish on a fresh store."""
    store = _store(home, name)
    executor = _executor(home, store)
    started = time.perf_counter()
    mission = executor.start("bench", plan, {})
    run = asyncio.run(executor.drive("bench", mission))
    elapsed = time.perf_counter() - started
    assert run.outcome == "succeeded"
    store.close()
    return elapsed


def concurrent_missions(home: Path, count: int) -> list[float]:
    """Latency of each of `count` three-step missions started and driven together."""
    store = _store(home, "concurrent")
    quotas = TenantQuotas(max_concurrent_missions=count)
    executor = _executor(home, store, quotas)
    plan = chain_plan(3)

    async def one() -> float:
        started = time.perf_counter()
        mission = executor.start("bench", plan, {})
        await executor.drive("bench", mission)
        return time.perf_counter() - started

    async def all_of_them() -> list[float]:
        return list(await asyncio.gather(*(one() for _ in range(count))))

    latencies = asyncio.run(all_of_them())
    store.close()
    return latencies


def mission_listing(home: Path, count: int) -> tuple[float, float, int]:
    """Seconds to list a tenant's missions from a store of `count` finished 3-step missions:
    the first listing (folding the whole log), then one after another mission ran."""
    store = _store(home, "listing")
    executor = _executor(home, store)
    plan = chain_plan(3)

    async def run_all() -> None:
        for _ in range(count):
            await executor.drive("bench", executor.start("bench", plan, {}))

    asyncio.run(run_all())
    cold = _executor(home, store)
    started = time.perf_counter()
    assert len(cold.index().of_tenant("bench")) == count
    first = time.perf_counter() - started
    asyncio.run(cold.drive("bench", cold.start("bench", plan, {})))
    started = time.perf_counter()
    assert len(cold.index().of_tenant("bench")) == count + 1
    later = time.perf_counter() - started
    events = store.last_position()
    store.close()
    return first, later, events


def langgraph_chain(home: Path, size: int) -> float | None:
    """Seconds for LangGraph to run a `size`-node chain with a synchronous SQLite checkpointer."""
    try:
        import sqlite3

        from langgraph.checkpoint.sqlite import SqliteSaver
        from langgraph.graph import END, START, StateGraph
    except ImportError:
        return None
    from typing import TypedDict

    class State(TypedDict):
        n: int

    graph: Any = StateGraph(State)
    for i in range(size):
        graph.add_node(f"s{i}", lambda state: {"n": state["n"] + 1})
    graph.add_edge(START, "s0")
    for i in range(1, size):
        graph.add_edge(f"s{i - 1}", f"s{i}")
    graph.add_edge(f"s{size - 1}", END)
    connection = sqlite3.connect(home / "langgraph.sqlite3", check_same_thread=False)
    app = graph.compile(checkpointer=SqliteSaver(connection))
    config = {"configurable": {"thread_id": "bench"}, "recursion_limit": size + 10}
    started = time.perf_counter()
    result = app.invoke({"n": 0}, config, durability="sync")
    elapsed = time.perf_counter() - started
    connection.close()
    assert result["n"] == size
    return elapsed


def main() -> None:
    """Print the figures side by side."""
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch)
        two, one = raw_durable_writes(home, CHAIN)
        chain = run_plan(home, chain_plan(CHAIN), "chain") / CHAIN
        wide = run_plan(home, wide_plan(CHAIN), "wide")
        latencies = sorted(concurrent_missions(home, 200))
        first_listing, later_listing, listed_events = mission_listing(home, LISTED)
        graph = langgraph_chain(home, CHAIN)
    print(
        f"raw durable writes per step: two appends {two * 1e3:.2f} ms, "
        f"one append of both {one * 1e3:.2f} ms"
    )
    print(
        f"1,000-step noop chain: {chain * 1e3:.2f} ms per step "
        f"({chain / two:.1f}x two raw appends, {chain / one:.1f}x one; goal within 3x)"
    )
    print(f"1,000-step wide DAG: {wide:.2f} s, {CHAIN / wide:,.0f} steps/s (max_parallel_steps 64)")
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"200 concurrent 3-step missions: p50 {p50 * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms")
    print(
        f"listing a tenant's {LISTED:,} missions ({listed_events:,} events): first"
        f" {first_listing * 1e3:.0f} ms (the whole log), then {later_listing * 1e3:.2f} ms"
        " (only what was committed since)"
    )
    if graph is None:
        print("LangGraph: not installed (it is a bench-only dependency in requirements.lock)")
    else:
        per_step = graph / CHAIN
        verdict = "meets" if per_step / chain >= 5 else "misses"
        print(
            "LangGraph 1,000-step chain, SqliteSaver, durability=sync: "
            f"{per_step * 1e3:.2f} ms per step; "
            f"RustChain is {per_step / chain:.1f}x faster ({verdict} the 5x goal)"
        )


if __name__ == "__main__":
    main()
