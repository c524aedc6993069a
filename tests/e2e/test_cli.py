"""The `rustchain` command as a user runs it: output, exit codes, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.paths import BROKEN, COMPAT, REPO, WARNED


def rustchain(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run the command as a user would, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "rustchain", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_version_prints_the_version() -> None:
    result = rustchain("--version")

    assert result.returncode == 0
    assert result.stdout.startswith("rustchain, version ")


def test_validate_accepts_valid_missions_with_exit_code_zero() -> None:
    result = rustchain("validate", "missions/hello.yaml", "missions/code_analysis.yaml")

    assert result.returncode == 0, result.stderr
    assert "missions/hello.yaml: valid (3 steps)" in result.stdout
    assert "missions/code_analysis.yaml: valid (8 steps)" in result.stdout


def test_validate_reports_every_error_compiler_style_with_exit_code_one() -> None:
    broken = BROKEN / "many_errors_one_pass.yaml"

    result = rustchain("validate", str(broken))

    assert result.returncode == 1
    expected = [
        f"{broken}:{line}" for line in broken.with_suffix(".expected").read_text().splitlines()
    ]
    assert result.stderr.splitlines()[: len(expected)] == expected
    assert "Traceback" not in result.stderr


def test_validate_strict_makes_warnings_errors_for_teams_that_want_it() -> None:
    warned = WARNED / "unknown_step_key_typo.yaml"

    lenient = rustchain("validate", str(warned))
    strict = rustchain("validate", "--strict", str(warned))

    assert lenient.returncode == 0, lenient.stderr
    assert "warning: unknown key 'depends-on' in a step is ignored; did you mean" in lenient.stderr
    assert strict.returncode == 1
    assert (
        "error: unknown key 'depends-on' in a step is ignored; did you mean 'depends_on'? (strict)"
        in strict.stderr
    )
    assert f"{warned}: invalid (1 error(s))" in strict.stderr


def test_validate_without_files_is_a_usage_error() -> None:
    result = rustchain("validate")

    assert result.returncode == 2
    assert "Missing argument" in result.stderr


def test_validate_a_missing_file_says_so_without_a_traceback() -> None:
    result = rustchain("validate", "no/such/mission.yaml")

    assert result.returncode == 1
    assert result.stderr.startswith("no/such/mission.yaml:1:1: error: cannot read the file:")
    assert "Traceback" not in result.stderr


def test_validate_a_directory_says_it_cannot_be_read(tmp_path: Path) -> None:
    result = rustchain("validate", str(tmp_path))

    assert result.returncode == 1
    assert "cannot read the file" in result.stderr


def test_validate_checks_every_file_even_after_an_invalid_one() -> None:
    result = rustchain("validate", str(BROKEN / "cycle_three.yaml"), "missions/hello.yaml")

    assert result.returncode == 1
    assert "missions/hello.yaml: valid" in result.stdout
    assert "dependency cycle: a -> c -> b -> a" in result.stderr


def test_plan_json_is_stable_and_carries_its_hash() -> None:
    first = rustchain("plan", "missions/code_analysis.yaml", "--json")
    second = rustchain("plan", "missions/code_analysis.yaml", "--json")

    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    plan = json.loads(first.stdout)
    assert plan["levels"] == [
        ["list_sources", "make_build"],
        ["list_files", "find_todos"],
        ["count_lines"],
        ["remember_size"],
        ["recall_size"],
        ["write_report"],
    ]
    assert plan["critical_path"] == [
        "list_sources",
        "list_files",
        "count_lines",
        "remember_size",
        "recall_size",
        "write_report",
    ]
    assert len(plan["hash"]) == 64


def test_plan_shows_levels_as_a_table() -> None:
    result = rustchain("plan", "missions/hello.yaml")

    assert result.returncode == 0, result.stderr
    assert "write_greeting" in result.stdout
    assert "critical path: write_greeting -> read_greeting -> say_it" in result.stdout


def test_plan_of_a_broken_mission_exits_one_with_errors() -> None:
    result = rustchain("plan", str(BROKEN / "self_dependency.yaml"))

    assert result.returncode == 1
    assert "step 'a' depends on itself" in result.stderr


def test_schema_describes_every_step_type() -> None:
    result = rustchain("schema")

    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["required"]) >= {"version", "name", "steps"}
    step_types = schema["$defs"]["MissionStep"]["properties"]["step_type"]["anyOf"][0]["enum"]
    assert {"create_file", "CreateFile", "command", "tool", "Tool", "rag_query"} <= set(step_types)
    assert "CreateFileStepParameters" in schema["$defs"]


def test_rustchain_examples_validate_from_the_command_line() -> None:
    result = rustchain("validate", str(COMPAT / "examples" / "hello_world.yaml"))

    assert result.returncode == 0, result.stderr
