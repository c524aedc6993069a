"""Mission text in, plan or compiler-style diagnostics out: the one pure entry point."""

from __future__ import annotations

import gc
from dataclasses import dataclass, replace

from rustchain.domain.language.diagnostics import Diagnostic, DiagnosticSink, Position, Severity
from rustchain.domain.language.mission import Mission
from rustchain.domain.language.mission_loader import MissionLoader
from rustchain.domain.language.nested_chains import expand_nested_chains
from rustchain.domain.language.source import NodeKind, SourceDocument
from rustchain.domain.language.step_types import StepTypeRegistry
from rustchain.domain.language.yaml_reader import ReadLimits, read_source
from rustchain.domain.plans.plan import Plan, build_plan


@dataclass(frozen=True)
class Compilation:
    """The outcome of compiling one file: a plan when valid, and every diagnostic either way."""

    file: str
    diagnostics: list[Diagnostic]
    mission: Mission | None
    plan: Plan | None

    @property
    def ok(self) -> bool:
        """True when the file has no errors (warnings allowed)."""
        return self.plan is not None

    def strict(self) -> Compilation:
        """Every warning made an error: valid only without any diagnostic (`validate --strict`)."""
        if not self.diagnostics:
            return self
        errors = [
            d
            if d.severity is Severity.ERROR
            else replace(d, severity=Severity.ERROR, message=f"{d.message} (strict)")
            for d in self.diagnostics
        ]
        return Compilation(self.file, errors, None, None)

    @property
    def errors(self) -> list[Diagnostic]:
        """Only the errors."""
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]


def _step_positions(document: SourceDocument) -> dict[str, Position]:
    steps = document.root.child("steps")
    positions: dict[str, Position] = {}
    if steps is None or steps.kind is not NodeKind.SEQUENCE:
        return positions
    for node in steps.items:
        id_node = node.child("id")
        if id_node is not None and isinstance(id_node.value, str):
            positions.setdefault(id_node.value, node.position)
    return positions


def compile_mission(
    data: bytes, file: str, registry: StepTypeRegistry, limits: ReadLimits | None = None
) -> Compilation:
    """Parse, validate and plan a mission file's bytes, reporting every problem in one pass."""
    sink = DiagnosticSink(file)
    # Compiling allocates a node per value and frees nothing until it ends, so the cyclic garbage
    # collector would rescan a growing heap again and again: pausing it keeps time linear in size.
    collecting = gc.isenabled()
    gc.disable()
    try:
        document = read_source(data, file, sink, limits)
        if document is not None:
            document = expand_nested_chains(document, sink)
        mission = MissionLoader(registry).load(document, sink) if document is not None else None
        plan = None
        if mission is not None and document is not None:
            plan = build_plan(mission, file, _step_positions(document))
    finally:
        if collecting:
            gc.enable()
    return Compilation(file, sink.sorted(), mission, plan)
