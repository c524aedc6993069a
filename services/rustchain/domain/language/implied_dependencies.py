"""Dependencies that a step's references imply when its `depends_on` does not list them.

RustChain ran `{step1}` or `{previous_result}` in a step that did not depend on the step named, in
an order that usually happened to work. Here such a reference adds the dependency it implies, with
a warning naming it, so the order is the one the text needs; unless that would close a cycle, which
is an error naming the cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rustchain.domain.language import graph
from rustchain.domain.language.diagnostics import DiagnosticSink, Position
from rustchain.domain.language.mission import MissionStep


@dataclass
class ImpliedDependencies:
    """The mission's dependency graph, growing by the dependencies its references imply."""

    order: Sequence[str]
    deps: dict[str, list[str]]
    added: dict[str, list[str]] = field(default_factory=dict)
    # The dependency `{previous_result}` reads, per step: it must come first in depends_on.
    previous: dict[str, str] = field(default_factory=dict)
    # (step, upstream) pairs known to be ordered: dependencies only grow, so this never goes stale.
    _ordered: set[tuple[str, str]] = field(default_factory=set)
    _index: dict[str, int] = field(default_factory=dict)

    def require(
        self, step_id: str, upstream: str, text: str, position: Position, sink: DiagnosticSink
    ) -> bool:
        """Make `upstream` run before `step_id`; False (with an error) if that closes a cycle."""
        if (step_id, upstream) in self._ordered:
            return True
        if graph.is_upstream(upstream, step_id, self.deps):
            self._ordered.add((step_id, upstream))
            return True
        back = graph.dependency_path(upstream, step_id, self.deps)
        if back is not None:
            sink.error(
                position,
                f"step '{step_id}' uses {text}, so it must run after '{upstream}', but that "
                "would make a dependency cycle: "
                + " -> ".join([step_id, *back])
                + " (each step depends on the next)",
            )
            return False
        self.deps.setdefault(step_id, []).append(upstream)
        self.added.setdefault(step_id, []).append(upstream)
        self._ordered.add((step_id, upstream))
        sink.warning(
            position,
            f"step '{step_id}' uses {text}, but '{upstream}' is not in its depends_on: "
            f"'{step_id}' runs after '{upstream}' (list it in depends_on to say so)",
        )
        return True

    def require_previous(
        self, step_id: str, text: str, position: Position, sink: DiagnosticSink
    ) -> None:
        """`{previous_result}` in a step with no single dependency reads the step written just
        before it, as RustChain's documentation describes."""
        if step_id in self.previous:
            return
        deps = self.deps.get(step_id, [])
        if len(deps) == 1:
            self.previous[step_id] = deps[0]
            return
        if not self._index:
            self._index = {name: i for i, name in enumerate(self.order)}
        index = self._index[step_id]
        if index == 0:
            sink.error(
                position,
                f"{text} in step '{step_id}' names no step: it is the first step and has no "
                "depends_on; name the step instead, as in {step_id.output}",
            )
            return
        before = self.order[index - 1]
        self.previous[step_id] = before
        if before in deps:
            sink.warning(
                position,
                f"{text} in step '{step_id}' reads '{before}', the step written just before it "
                f"(of the {len(deps)} steps in its depends_on)",
            )
            return
        self.require(step_id, before, f"{text} (the step written just before it)", position, sink)

    def apply(self, steps: list[MissionStep]) -> list[MissionStep]:
        """The steps with their implied dependencies added, the one `{previous_result}` reads
        first (it reads the first entry of depends_on)."""
        if not self.added and not self.previous:
            return steps
        result = []
        for step in steps:
            depends_on = [*step.depends_on, *self.added.get(step.id, [])]
            first = self.previous.get(step.id)
            if first is not None and depends_on and depends_on[0] != first:
                depends_on = [first, *(d for d in depends_on if d != first)]
            changed = depends_on != step.depends_on
            result.append(step.model_copy(update={"depends_on": depends_on}) if changed else step)
        return result
