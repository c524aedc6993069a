"""Per-step cost of the code, file and git step types (issue 14) on a trivial input, beside the
`noop` step as baseline: median ms per step through each runner, the OS sandbox included where
the step runs a program (git, toolchains), so a slow library or program shows.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rustchain.domain.policy.model import Policy
from rustchain.domain.policy.toolchains import ToolchainPolicy
from rustchain.platform.sandbox.selection import choose_sandbox
from rustchain.steps import default_registry
from rustchain.steps.support.runtime import StepContext
from rustchain.steps.support.sandboxing import SANDBOX_SETTING
from rustchain.steps.support.toolchain_runs import DIRS_SETTING, ENV_SETTING, PATH_SETTING

FAST_RUNS = 30
PROGRAM_RUNS = 10
TOOLCHAIN_RUNS = 3
POLICY = Policy(toolchains=ToolchainPolicy(allowed=["rust", "python"]))
AUTHOR = {"author_name": "Bench", "author_email": "bench@example.org"}


def _workspace(root: Path) -> None:
    (root / "data.xml").write_text("<a><b>1</b><c>2</c></a>")
    (root / "src").mkdir()
    (root / "src" / "calc.py").write_text('def add(a, b):\n    """Add."""\n    return a + b\n')
    (root / "py").mkdir()
    (root / "py" / "test_x.py").write_text(
        "import unittest\nclass T(unittest.TestCase):\n    def test_a(self):\n        pass\n"
    )
    (root / "crate" / "src").mkdir(parents=True)
    (root / "crate" / "Cargo.toml").write_text(
        '[package]\nname = "b"\nversion = "0.1.0"\nedition = "2021"\n'
    )
    (root / "crate" / "src" / "main.rs").write_text("fn main() {}\n")
    repo = root / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "a.txt").write_text("a\n")
    git = ["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@b"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], check=True)


def _rust_settings() -> dict[str, str] | None:
    cargo = shutil.which("cargo")
    if cargo is None:
        return None
    home = Path(os.environ.get("CARGO_HOME", Path(cargo).resolve().parent.parent))
    rustup = Path(os.environ.get("RUSTUP_HOME", Path.home() / ".rustup"))
    return {
        PATH_SETTING: str(Path(cargo).parent),
        DIRS_SETTING: f"{home}:{rustup}",
        ENV_SETTING: f"CARGO_HOME={home} RUSTUP_HOME={rustup}",
    }


Case = tuple[str, str, dict[str, Any], int]
CASES: list[Case] = [
    ("noop", "noop", {}, FAST_RUNS),
    ("parse_xml", "parse_xml", {"path": "data.xml"}, FAST_RUNS),
    ("csv_process", "csv_process", {"content": "a,b\n1,2\n"}, FAST_RUNS),
    ("compress tar", "compress", {"source": "src", "destination": "o.tar"}, FAST_RUNS),
    (
        "compress zip",
        "compress",
        {"source": "src", "destination": "o.zip", "format": "zip"},
        FAST_RUNS,
    ),
    ("extract_functions", "extract_functions", {"path": "src"}, FAST_RUNS),
    ("generate_docs", "generate_docs", {"path": "src", "output": "api.md"}, FAST_RUNS),
    ("git_status", "git_status", {"path": "repo"}, PROGRAM_RUNS),
    ("git_diff", "git_diff", {"path": "repo"}, PROGRAM_RUNS),
    ("git_branch", "git_branch", {"path": "repo", "switch": False}, PROGRAM_RUNS),
    ("git_commit", "git_commit", {"path": "repo", "message": "m", **AUTHOR}, PROGRAM_RUNS),
    ("git_merge", "git_merge", {"path": "repo", "branch": "main"}, PROGRAM_RUNS),
    ("compile_code python", "compile_code", {"path": "py", "language": "python"}, PROGRAM_RUNS),
    ("run_tests python", "run_tests", {"path": "py", "language": "python"}, PROGRAM_RUNS),
    ("compile_code rust", "compile_code", {"path": "crate"}, TOOLCHAIN_RUNS),
    ("run_tests rust", "run_tests", {"path": "crate"}, TOOLCHAIN_RUNS),
    ("format_code rust", "format_code", {"path": "crate"}, TOOLCHAIN_RUNS),
    ("lint_code rust", "lint_code", {"path": "crate"}, TOOLCHAIN_RUNS),
]


async def _median_ms(
    step_type: str, parameters: Mapping[str, Any], context: StepContext, runs: int, label: str
) -> float:
    definition = default_registry(include_plugins=False).types[step_type]
    runner = definition.run
    times = []
    for n in range(runs + 1):  # the first run warms caches (imports, grammars, a build)
        values = dict(parameters)
        if step_type == "git_branch":
            values["branch"] = f"b{n}"  # a new branch each time
        if step_type == "git_commit":
            (context.workspace / "repo" / "a.txt").write_text(f"{n}\n")  # something to commit
        params = definition.parameters.model_validate(values)
        started = time.perf_counter()
        await runner(params, context)
        if n:
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def main() -> None:
    """Print each step type's median ms per step beside noop's."""
    sandbox = choose_sandbox({SANDBOX_SETTING: "auto"})
    if sandbox.unavailable is not None:
        print(f"no sandbox here ({sandbox.unavailable}): program-running steps left out")
    rust = _rust_settings()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        _workspace(root)
        context = StepContext(
            "bench", "m", "s", root, 300, settings=rust or {}, policy=POLICY, sandbox=sandbox
        )
        base = None
        for label, step_type, parameters, runs in CASES:
            if label.endswith("rust") and rust is None:
                print(f"{label}: no cargo on this machine")
                continue
            ms = asyncio.run(_median_ms(step_type, parameters, context, runs, label))
            base = ms if base is None else base
            print(
                f"{label:<22} {ms:10.4f} ms/step (median of {runs}; noop {base:.4f} ms, "
                f"sandbox {sandbox.name})"
            )
