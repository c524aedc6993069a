"""`rustchain run` on every valid RustChain mission, with network and LLM steps pointed at a
real local test server, in a temporary workspace: the reviewed missions of RustChain's repository
run to success; every mission of its history that loads here runs to a recorded end (or is refused
by the verifier, saying why), never to a traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rustchain.tools import compat_report
from rustchain.tools.compat_report import Outcome
from tests.integration.http_fixtures import LocalServer, json_answer, serve
from tests.paths import COMPAT, DATA, HISTORY, REPO
from tests.unit.test_compatibility import LOADING_WITH_WARNINGS, VALID_RUSTCHAIN_MISSIONS

_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]+)?")


@pytest.fixture(scope="module")
def local_api() -> Iterator[LocalServer]:
    """Answers chat completions like a model and every other request with JSON."""

    def answer(method: str, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
        if path.endswith("/chat/completions") or path == "/api/chat":
            messages = (body or {}).get("messages") or [{"content": ""}]
            agent = messages[0].get("role") == "system" and "JSON object" in messages[0]["content"]
            text = (
                json.dumps({"final": "done"})
                if agent
                else f"answer to: {messages[-1]['content'][:40]}"
            )
            if path == "/api/chat":
                return json_answer({"message": {"role": "assistant", "content": text}})
            return json_answer({"choices": [{"message": {"role": "assistant", "content": text}}]})
        status = int(path.rsplit("/", 1)[-1]) if path.startswith("/status/") else 200
        return json_answer({"method": method, "path": path, "received": body}, status)

    yield from serve(answer)


def _run(source: Path, local_api: LocalServer, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run a mission with its URLs pointed at the local server, under the compat-runs policy."""
    mission = tmp_path / source.name
    port = local_api.url.rsplit(":", 1)[1]
    mission.write_text(_URL.sub(f"http://127.0.0.1:{port}", source.read_text()))
    policy = tmp_path / "policy.yaml"
    policy.write_text((DATA / "policies" / "compat-runs.yaml").read_text().replace("8080", port))
    env = {
        **os.environ,
        "RUSTCHAIN_HOME": str(tmp_path / "home"),
        "RUSTCHAIN_LLM_URL": f"{local_api.url}/v1",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "rustchain", "run", str(mission), "--policy", str(policy)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=180,
        check=False,
    )


@pytest.mark.parametrize("name", sorted(VALID_RUSTCHAIN_MISSIONS))
def test_rustchain_mission_runs_to_success(
    name: str, local_api: LocalServer, tmp_path: Path
) -> None:
    result = _run(COMPAT / name, local_api, tmp_path)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "mission succeeded" in result.stdout
    assert "hash chain whole and untouched" in result.stdout


LOADING_HISTORY = sorted(
    item.name for item in compat_report.history_files() if item.outcome is Outcome.LOADS
)

# Missions of RustChain's history that run to success here. The others fail for reasons of their
# own world (`cd /c/Users/...`, `cargo` not installed, a tool step without `tool`, a CSV file the
# mission expects to exist) or are refused by the verifier (a path through `..`, `/tmp/...`).
HISTORY_RUNS_TO_SUCCESS = {
    "README.md__L88.yaml",
    "archive__development__champion_test_mission.yaml",
    "archive__development__punch_updater_system_simple.yaml",
    "archive__development__shimmy_core_shim_mission.yaml",
    "archive__development__shimmy_final_implementation.yaml",
    "archive__development__shimmy_implementation_mission.yaml",
    "archive__development__step_type_validation.yaml",
    "archive__development__test_basic_functionality.yaml",
    "archive__development__test_champion_simple.yaml",
    "archive__development__test_complex_var.yaml",
    "archive__development__test_core_functionality.yaml",
    "archive__development__test_corrected_chaining.yaml",
    "archive__development__test_default_llm.yaml",
    "archive__development__test_http_detailed.yaml",
    "archive__development__test_http_fixed.yaml",
    "archive__development__test_llm_simple.yaml",
    "archive__development__test_ollama_champion.yaml",
    "archive__development__test_phi3_llm.yaml",
    "archive__development__test_shimmy_coverage_focused.yaml",
    "archive__development__test_shimmy_integration.yaml",
    "archive__development__test_simple.yaml",
    "archive__development__test_var_simple.yaml",
    "archive__development__test_var_substitution.yaml",
    "archive__junk__ART_IMPLEMENTATION_STRATEGY.md__L129.yaml",
    "archive__junk__ART_IMPLEMENTATION_STRATEGY.md__L179.yaml",
    "archive__junk__ART_IMPLEMENTATION_STRATEGY.md__L230.yaml",
    "archive__junk__ART_IMPLEMENTATION_STRATEGY.md__L390.yaml",
    "archive__junk__ART_IMPLEMENTATION_STRATEGY.md__L79.yaml",
    "archive__junk__README.md__L54.yaml",
    "docs__SPEC_MISSION_ENGINE.md__L355.yaml",
    "docs__SPEC_MISSION_ENGINE.md__L437.yaml",
    "docs__quickstart.md__L100.yaml",
    "examples__comprehensive_demo.yaml",
    "missions__coverage_mission_01_memory.yaml",
    "missions__coverage_mission_02_tools.yaml",
    "missions__coverage_mission_03_engine.yaml",
    "missions__dogfood_http_bridge_test.yaml",
    "missions__done_champion_6c_doc_testing.yaml",
    "src__engine__mod.rs__L594.yaml",
    "src__engine__mod.rs__L622.json",
    "tests__regression_tests.rs__L168.yaml",
}


def _assert_recorded_end(result: subprocess.CompletedProcess[str], succeeds: bool) -> None:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output[-3000:]
    if succeeds:
        assert result.returncode == 0, output[-3000:]
        assert "mission succeeded" in result.stdout
        assert "hash chain whole and untouched" in result.stdout
    elif "hash chain whole and untouched" in result.stdout:
        assert result.returncode == 1
        assert "mission failed" in result.stdout
        assert any(line.startswith("failed ") for line in result.stdout.splitlines()), output
    else:
        # Not run: the verifier refused it under the policy, naming the step and the rule.
        assert result.returncode == 1
        assert "error: [" in result.stderr, output[-3000:]


@pytest.mark.parametrize("name", LOADING_HISTORY)
def test_rustchain_history_mission_runs_to_a_recorded_end(
    name: str, local_api: LocalServer, tmp_path: Path
) -> None:
    result = _run(HISTORY / name, local_api, tmp_path)

    _assert_recorded_end(result, name in HISTORY_RUNS_TO_SUCCESS)


@pytest.mark.parametrize("name", sorted(LOADING_WITH_WARNINGS))
def test_rustchain_mission_loading_with_warnings_runs_to_a_recorded_end(
    name: str, local_api: LocalServer, tmp_path: Path
) -> None:
    result = _run(COMPAT / name, local_api, tmp_path)

    _assert_recorded_end(result, succeeds=False)


def test_a_reference_to_a_step_not_upstream_reads_its_output(
    local_api: LocalServer, tmp_path: Path
) -> None:
    # RustChain ran `{step1}` in a step that does not depend on step1 in a random order; here the
    # reference makes step2 run after step1, so the file holds step1's answer.
    result = _run(HISTORY / "archive__development__test_var_simple.yaml", local_api, tmp_path)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    written = next((tmp_path / "home").rglob("var_output.md")).read_text()
    assert written == "Result: answer to: Say: Hello from step 1"


_NESTED_CHAIN = """version: "1.0"
name: nested-chain
steps:
  - id: pipeline
    name: Pipeline
    step_type: chain
    parameters:
      steps:
        - {step_name: write, step_type: create_file, parameters: {path: a.txt, content: A}}
        - {step_name: check, step_type: command, parameters: {command: PROGRAM, args: [a.txt]}}
        - {step_name: last, step_type: create_file, parameters: {path: b.txt, content: B}}
  - {id: after, name: After, step_type: create_file, depends_on: [pipeline],
     parameters: {path: c.txt, content: "{check.output}"}}
"""


def test_a_nested_chain_runs_its_sub_steps_in_order(local_api: LocalServer, tmp_path: Path) -> None:
    source = tmp_path / "mission" / "nested.yaml"
    source.parent.mkdir()
    source.write_text(_NESTED_CHAIN.replace("PROGRAM", "cat"))

    result = _run(source, local_api, tmp_path)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    workspace = next((tmp_path / "home").rglob("c.txt")).parent
    assert [(workspace / n).read_text() for n in ("a.txt", "b.txt", "c.txt")] == ["A", "B", "A"]


def test_a_nested_chain_stops_at_its_first_failing_sub_step(
    local_api: LocalServer, tmp_path: Path
) -> None:
    source = tmp_path / "mission" / "nested.yaml"
    source.parent.mkdir()
    source.write_text(_NESTED_CHAIN.replace("PROGRAM", "false"))

    result = _run(source, local_api, tmp_path)

    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "mission failed" in result.stdout
    assert "failed check: 'false' exited with status 1" in result.stdout
    assert "skipped last: fail_fast: step 'check' failed" in result.stdout
    assert "skipped pipeline: fail_fast: step 'check' failed" in result.stdout
    assert not list((tmp_path / "home").rglob("b.txt"))
    assert not list((tmp_path / "home").rglob("c.txt"))
