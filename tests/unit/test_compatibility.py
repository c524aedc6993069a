"""Every mission file of RustChain's repository loads here as the compatibility page says."""

from __future__ import annotations

from pathlib import Path

import pytest

from rustchain.tools import compat_report
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

FILES = compat_report.mission_files()


def test_the_rustchain_repository_is_beside_this_one() -> None:
    assert COMPAT.is_dir(), f"expected RustChain's missions at {COMPAT}"
    assert len(FILES) >= 25


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(COMPAT)) for p in FILES])
def test_rustchain_file_validates_or_gets_precise_errors(path: Path) -> None:
    compilation = compat_report.compile_compat(path)
    name = str(path.relative_to(COMPAT))
    line_count = path.read_text().count("\n") + 1

    if name in VALID_RUSTCHAIN_MISSIONS:
        assert compilation.plan is not None, [d.render() for d in compilation.errors]
    else:
        assert compilation.plan is None
        assert compilation.errors
    for diagnostic in compilation.diagnostics:
        assert diagnostic.file == name
        assert 1 <= diagnostic.position.line <= line_count
        assert diagnostic.position.column >= 1


def test_compatibility_page_matches_what_the_code_does() -> None:
    page = compat_report.PAGE.read_text()

    assert page == compat_report.render(), "run: python -m rustchain.tools.compat_report"
