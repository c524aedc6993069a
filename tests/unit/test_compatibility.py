"""Every mission file of RustChain's repository and history loads here as the compatibility page
says, and as RustChain's own loader did (`rustchain-history/expected.tsv`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rustchain.steps import default_registry
from rustchain.tools import compat_report
from rustchain.tools.compat_report import Outcome
from tests.paths import COMPAT

# Reviewed by hand: these are valid RustChain missions, and must stay valid here.
VALID_RUSTCHAIN_MISSIONS = {
    "demo/build_ai_tool.yaml",
    "demo/gif_mission.yaml",
    "examples/agent_demo.yaml",
    "examples/agent_reasoning.yaml",
    "examples/api_integration.yaml",
    "examples/automation_workflow.yaml",
    "examples/benchmark_suite.yaml",
    "examples/chain_demo.yaml",
    "examples/data_processing.yaml",
    "examples/hello_world.yaml",
    "examples/hello_world_fixed.yaml",
    "examples/llm_demo.yaml",
    "examples/performance_test.yaml",
    "examples/security_validation.yaml",
    "examples/shimmy_integration_demo.yaml",
    "examples/showcase_workflow.yaml",
    "examples/tool_demo.yaml",
    "examples/working_demo.yaml",
    "gif_demo/simple_demo.yaml",
    "src/cli/templates/agent_mission.yaml",
    "src/cli/templates/basic_mission.yaml",
    "src/cli/templates/llm_mission.yaml",
}

# Valid RustChain missions that load here with warnings: a step misses a parameter it needs (it
# fails when it runs, as in RustChain), or a key RustChain ignored looks like a misspelling.
LOADING_WITH_WARNINGS = {
    "missions/library/development-operations/comprehensive_spec_audit_concurrent.yaml",
    "missions/library/development-operations/generate_specifications_automated.yaml",
    "missions/website_update.yaml",
}

FILES = compat_report.mission_files()
HISTORY = compat_report.history_files()


def test_the_rustchain_repository_is_beside_this_one() -> None:
    assert COMPAT.is_dir(), f"expected RustChain's missions at {COMPAT}"
    assert len(FILES) >= 25


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(COMPAT)) for p in FILES])
def test_rustchain_file_validates_or_gets_precise_errors(path: Path) -> None:
    compilation = compat_report.compile_compat(path)
    name = str(path.relative_to(COMPAT))
    line_count = path.read_text().count("\n") + 1

    if name in VALID_RUSTCHAIN_MISSIONS | LOADING_WITH_WARNINGS:
        assert compilation.plan is not None, [d.render() for d in compilation.errors]
    else:
        assert compilation.plan is None
        assert compilation.errors
    for diagnostic in compilation.diagnostics:
        assert diagnostic.file == name
        assert 1 <= diagnostic.position.line <= line_count
        assert diagnostic.position.column >= 1


def test_rustchain_history_is_beside_this_one() -> None:
    assert compat_report.EXPECTED.is_file(), f"expected {compat_report.EXPECTED}"
    assert len(HISTORY) == 122
    assert sum(item.rustchain_valid for item in HISTORY) == 85


@pytest.mark.parametrize("item", HISTORY, ids=[item.name for item in HISTORY])
def test_history_file_fares_as_rustchain_did(item: compat_report.HistoryFile) -> None:
    compilation = item.compilation
    line_count = (compat_report.HISTORY / item.name).read_text().count("\n") + 1

    if item.rustchain_valid:
        # Loads, warnings allowed; or refused only for step types not registered yet, and then
        # it loads as soon as they are (this test then sees LOADS).
        assert item.outcome in (Outcome.LOADS, Outcome.AWAITS_STEP_TYPES), [
            d.render() for d in compilation.errors
        ]
    else:
        # Refused with errors; or accepted only because our format lets a step omit `name`.
        assert item.outcome in (Outcome.REFUSED, Outcome.ACCEPTED_SUPERSET)
        assert compilation.plan is not None or compilation.errors
    for diagnostic in compilation.diagnostics:
        assert diagnostic.file == item.name
        assert 1 <= diagnostic.position.line <= line_count
        assert diagnostic.position.column >= 1


def test_history_files_awaiting_step_types_name_only_refused_rustchain_types() -> None:
    waiting = [i for i in HISTORY if i.outcome is Outcome.AWAITS_STEP_TYPES]

    for item in waiting:
        refused = compat_report.refused_types_in(item)
        assert refused, item.name
        assert all("is not supported" in d.message for d in item.compilation.errors), item.name


def test_compatibility_page_matches_what_the_code_does() -> None:
    page = compat_report.PAGE.read_text()

    assert page == compat_report.render(), "run: python -m rustchain.tools.compat_report"


def test_every_rustchain_step_type_is_registered_and_runs() -> None:
    names = compat_report.rustchain_step_types()
    registry = default_registry(include_plugins=False)

    assert len(names) == 51
    assert [n for n in names if getattr(registry.get(n), "run", None) is None] == []
    assert registry.refused == {}
