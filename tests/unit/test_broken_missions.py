"""The corpus of broken missions: each file's every diagnostic, at its exact line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from rustchain.domain.plans.compiler import compile_mission
from rustchain.steps import default_registry
from tests.paths import BROKEN

CASES = sorted(p for p in BROKEN.iterdir() if p.suffix != ".expected")


def test_the_corpus_has_at_least_forty_broken_missions() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[p.name for p in CASES])
def test_broken_mission_reports_every_problem_where_it_is(case: Path) -> None:
    compilation = compile_mission(case.read_bytes(), case.name, default_registry())

    rendered = [d.render().removeprefix(f"{case.name}:") for d in compilation.diagnostics]
    expected = case.with_suffix(".expected").read_text().splitlines()
    assert rendered == expected
    assert compilation.plan is None
    assert compilation.errors, "a broken mission must have at least one error"
