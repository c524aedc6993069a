"""Missions RustChain would run that load here with warnings, and that `--strict` refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from rustchain.domain.language.diagnostics import Severity
from rustchain.domain.plans.compiler import compile_mission
from rustchain.steps import default_registry
from tests.paths import WARNED

CASES = sorted(p for p in WARNED.iterdir() if p.suffix != ".expected")


@pytest.mark.parametrize("case", CASES, ids=[p.name for p in CASES])
def test_mission_loads_with_each_warning_where_it_is(case: Path) -> None:
    compilation = compile_mission(case.read_bytes(), case.name, default_registry())

    rendered = [d.render().removeprefix(f"{case.name}:") for d in compilation.diagnostics]
    assert rendered == case.with_suffix(".expected").read_text().splitlines()
    assert compilation.plan is not None


@pytest.mark.parametrize("case", CASES, ids=[p.name for p in CASES])
def test_strict_makes_every_warning_an_error(case: Path) -> None:
    compilation = compile_mission(case.read_bytes(), case.name, default_registry())

    strict = compilation.strict()

    if not compilation.diagnostics:
        assert strict.plan is not None
        return
    assert strict.plan is None
    assert [d.severity for d in strict.diagnostics] == [Severity.ERROR] * len(
        compilation.diagnostics
    )
    assert [d.message for d in strict.diagnostics] == [
        f"{d.message} (strict)" for d in compilation.diagnostics
    ]
