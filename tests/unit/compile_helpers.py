"""Compiling mission text in tests."""

from __future__ import annotations

from rustchain.domain.plans.compiler import Compilation, compile_mission
from rustchain.domain.plans.plan import Plan
from rustchain.steps import default_registry

REGISTRY = default_registry(include_plugins=False)


def compile_text(text: str, file: str = "mission.yaml") -> Compilation:
    """Compile mission text as if read from `file`."""
    return compile_mission(text.encode("utf-8"), file, REGISTRY)


def messages(compilation: Compilation) -> list[str]:
    """The rendered diagnostics without the file name."""
    return [d.render().removeprefix(f"{compilation.file}:") for d in compilation.diagnostics]


def plan_of(text: str) -> Plan:
    """The plan of mission text that must be valid."""
    compilation = compile_text(text)
    assert compilation.plan is not None, [d.render() for d in compilation.diagnostics]
    return compilation.plan
