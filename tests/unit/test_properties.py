"""Property tests: levels respect every dependency; mutated mission files never crash the loader."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rustchain.domain.language import graph
from rustchain.domain.plans.compiler import compile_mission
from tests.paths import REPO
from tests.unit.compile_helpers import REGISTRY


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[str], dict[str, list[str]]]:
    """A random DAG: each step depends only on steps before it."""
    size = draw(st.integers(min_value=1, max_value=40))
    order = [f"s{i}" for i in range(size)]
    deps = {
        name: draw(st.lists(st.sampled_from(order[:i]), unique=True, max_size=5)) if i else []
        for i, name in enumerate(order)
    }
    shuffled = draw(st.permutations(order))
    return list(shuffled), deps


@given(dags())
def test_levels_put_every_step_after_all_its_dependencies(
    dag: tuple[list[str], dict[str, list[str]]],
) -> None:
    order, deps = dag

    levels = graph.levels(order, deps)

    level_of = {name: i for i, level in enumerate(levels) for name in level}
    assert sorted(level_of) == sorted(order)
    for name, needed in deps.items():
        assert all(level_of[d] < level_of[name] for d in needed)
        # A step sits at the first level its dependencies allow: nothing runs later than needed.
        assert level_of[name] == 1 + max((level_of[d] for d in needed), default=-1)


@given(dags(), st.data())
def test_critical_path_is_a_dependency_chain_of_maximum_weight(
    dag: tuple[list[str], dict[str, list[str]]], data: st.DataObject
) -> None:
    order, deps = dag
    weights = {name: data.draw(st.integers(min_value=1, max_value=100)) for name in order}

    path, total = graph.critical_path(order, deps, weights.__getitem__)

    assert all(earlier in deps[later] for earlier, later in itertools.pairwise(path))
    assert total == sum(weights[name] for name in path)
    longest: dict[str, int] = {}
    for name in graph.topological(order, deps):
        longest[name] = weights[name] + max((longest[d] for d in deps[name]), default=0)
    assert total == max(longest.values())


@given(dags(), st.data())
def test_an_added_back_edge_is_found_as_a_cycle_of_real_edges(
    dag: tuple[list[str], dict[str, list[str]]], data: st.DataObject
) -> None:
    order, deps = dag
    chains = [(a, b) for a in deps for b in deps[a]]
    if not chains:
        return
    dependent, dependency = data.draw(st.sampled_from(chains))
    deps = {k: list(v) for k, v in deps.items()}
    deps[dependency].append(dependent)

    cycles = graph.find_cycles(order, deps)

    assert cycles
    for cycle in cycles:
        assert cycle[0] == cycle[-1]
        assert all(b in deps[a] for a, b in itertools.pairwise(cycle))


SEED = (REPO / "missions" / "code_analysis.yaml").read_bytes()


@st.composite
def mutated_missions(draw: st.DrawFn) -> bytes:
    """A real mission with random bytes replaced, inserted, deleted or lines shuffled."""
    data = bytearray(SEED)
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        kind = draw(st.sampled_from(["replace", "insert", "delete", "swap_lines", "yaml"]))
        at = draw(st.integers(min_value=0, max_value=max(len(data) - 1, 0)))
        if kind == "replace" and data:
            data[at] = draw(st.integers(min_value=0, max_value=255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at : at + draw(st.integers(min_value=1, max_value=40))]
        elif kind == "yaml":
            data[at:at] = draw(
                st.sampled_from(
                    [
                        b": ",
                        b"- ",
                        b"{",
                        b"]",
                        b"&a ",
                        b"*a",
                        b"\t",
                        b"'",
                        b"\n  ",
                        b"<<: ",
                        b"!!int ",
                        b"---\n",
                    ]
                )
            )
        else:
            lines = bytes(data).split(b"\n")
            i, j = (draw(st.integers(min_value=0, max_value=len(lines) - 1)) for _ in range(2))
            lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"\n".join(lines))
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_missions())
def test_a_mutated_mission_never_raises_and_every_error_is_placed(data: bytes) -> None:
    compilation = compile_mission(data, "fuzzed.yaml", REGISTRY)

    lines = len(data.decode("utf-8", errors="replace").splitlines()) + 1
    assert compilation.plan is not None or compilation.errors
    for diagnostic in compilation.diagnostics:
        assert 1 <= diagnostic.position.line <= lines
        assert diagnostic.position.column >= 1
        assert diagnostic.message


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(data: bytes) -> None:
    compilation = compile_mission(data, "random.yaml", REGISTRY)

    assert compilation.plan is None
    assert compilation.errors
    lines = len(data.decode("utf-8", errors="replace").splitlines()) + 1
    assert all(1 <= d.position.line <= lines for d in compilation.diagnostics)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
        ),
        max_leaves=30,
    )
)
def test_any_json_value_never_raises(value: object) -> None:
    import json

    data = json.dumps(value).encode()

    compilation = compile_mission(data, "value.json", REGISTRY)

    assert compilation.plan is not None or compilation.errors
