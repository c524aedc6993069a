"""Graph algorithms over step dependencies: cycles, levels and the critical path.

Every function is iterative, so a 100,000-step chain costs time, not stack.
`deps[s]` lists the steps that `s` depends on; edges point from a step to its dependencies.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence


def strongly_connected(order: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, each listed in file order."""
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in order:
        if root in index_of:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child_index = work.pop()
            if child_index == 0:
                index_of[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = deps.get(node, ())
            advanced = False
            for i in range(child_index, len(children)):
                child = children[i]
                if child not in deps:
                    continue
                if child not in index_of:
                    work.append((node, i + 1))
                    work.append((child, 0))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index_of[child])
            if advanced:
                continue
            if low[node] == index_of[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    position = {name: i for i, name in enumerate(order)}
    return [sorted(c, key=position.__getitem__) for c in components]


def find_cycles(order: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """One cycle per cyclic component, as `[a, b, ..., a]` from its first step in file order."""
    cycles: list[list[str]] = []
    for component in strongly_connected(order, deps):
        start = component[0]
        if len(component) == 1:
            if start in deps.get(start, ()):
                cycles.append([start, start])
            continue
        members = set(component)
        came_from: dict[str, str] = {}
        queue = deque([start])
        found = False
        while queue and not found:
            node = queue.popleft()
            for child in deps.get(node, ()):
                if child == start:
                    came_from[start] = node
                    found = True
                    break
                if child in members and child not in came_from:
                    came_from[child] = node
                    queue.append(child)
        path = [start]
        node = came_from[start]
        while node != start:
            path.append(node)
            node = came_from[node]
        path.append(start)
        cycles.append([path[0], *reversed(path[1:-1]), start])
    return cycles


def levels(
    order: Sequence[str], deps: Mapping[str, Sequence[str]], topo: Sequence[str] | None = None
) -> list[list[str]]:
    """Steps grouped by depth: each level depends only on earlier ones (acyclic graphs only)."""
    level_of: dict[str, int] = {}
    for name in topo if topo is not None else topological(order, deps):
        level_of[name] = 1 + max((level_of[d] for d in deps.get(name, ())), default=-1)
    grouped: list[list[str]] = [[] for _ in range(1 + max(level_of.values(), default=-1))]
    for name in order:
        grouped[level_of[name]].append(name)
    return grouped


def topological(order: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Kahn's order, stable with respect to file order (the graph must be acyclic)."""
    waiting = {name: len(set(deps.get(name, ()))) for name in order}
    dependents: dict[str, list[str]] = {name: [] for name in order}
    for name in order:
        for dep in set(deps.get(name, ())):
            dependents[dep].append(name)
    ready = deque(name for name in order if waiting[name] == 0)
    result: list[str] = []
    while ready:
        name = ready.popleft()
        result.append(name)
        for dependent in dependents[name]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                ready.append(dependent)
    if len(result) != len(order):
        raise ValueError("the dependency graph has a cycle")
    return result


def critical_path(
    order: Sequence[str],
    deps: Mapping[str, Sequence[str]],
    weight: Callable[[str], float],
    topo: Sequence[str] | None = None,
) -> tuple[list[str], float]:
    """The heaviest dependency chain and its total weight (the graph must be acyclic)."""
    best: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for name in topo if topo is not None else topological(order, deps):
        heaviest: str | None = None
        for dep in deps.get(name, ()):
            if heaviest is None or best[dep] > best[heaviest]:
                heaviest = dep
        best[name] = weight(name) + (best[heaviest] if heaviest is not None else 0.0)
        via[name] = heaviest
    if not best:
        return [], 0.0
    end: str | None = max(order, key=best.__getitem__)
    total = best[end] if end is not None else 0.0
    path: list[str] = []
    while end is not None:
        path.append(end)
        end = via[end]
    return list(reversed(path)), total


def is_upstream(target: str, of: str, deps: Mapping[str, Sequence[str]]) -> bool:
    """Whether `target` is a (transitive) dependency of `of`."""
    seen = {of}
    frontier = [of]
    while frontier:
        node = frontier.pop()
        for dep in deps.get(node, ()):
            if dep == target:
                return True
            if dep not in seen:
                seen.add(dep)
                frontier.append(dep)
    return False


def dependency_path(start: str, target: str, deps: Mapping[str, Sequence[str]]) -> list[str] | None:
    """The shortest chain `[start, ..., target]` in which each step depends on the next, if any."""
    came_from: dict[str, str] = {start: start}
    frontier = deque([start])
    while frontier:
        node = frontier.popleft()
        if node == target:
            path = [node]
            while node != start:
                node = came_from[node]
                path.append(node)
            return list(reversed(path))
        for dep in deps.get(node, ()):
            if dep not in came_from:
                came_from[dep] = node
                frontier.append(dep)
    return None
