"""extract_functions and generate_docs on real source files of every installed grammar."""

from __future__ import annotations

import os
from pathlib import Path
from typing import get_args

import pytest

from rustchain.domain.policy.model import Policy
from rustchain.steps.extract_functions import Language
from rustchain.steps.support.code_functions import LANGUAGES
from rustchain.steps.support.runtime import PolicyRefusedError, StepRunError, WorkspaceEscapeError
from tests.integration.step_run_helpers import run_step

SOURCES = {
    "src/calc.py": 'class Calc:\n    def add(self, a, b):\n        """Add two numbers."""\n'
    "        return a + b\n\n\ndef main():\n    pass\n",
    "web/app.js": "/** Greets someone. */\nexport function greet(name) { return name; }\n"
    "const twice = (x) => x * 2;\n",
    "web/types.ts": "interface Shape { area(): number }\nfunction id<T>(x: T): T { return x; }\n",
    "core/lib.rs": "/// Adds one.\npub fn inc(a: i32) -> i32 { a + 1 }\n"
    "impl Point { fn norm(&self) -> f64 { 0.0 } }\n",
    "cmd/main.go": "package main\n\n// Run runs.\nfunc Run() error { return nil }\n"
    "func (s *Server) Stop() {}\n",
    "App.java": "class App {\n  /** Entry point. */\n  public static void main(String[] a) {}\n}\n",
}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    for name, text in SOURCES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_the_step_offers_every_installed_grammar() -> None:
    assert set(get_args(Language)) == set(LANGUAGES)


def test_extract_functions_finds_functions_methods_and_docs_in_every_language(
    workspace: Path,
) -> None:
    output = run_step("extract_functions", workspace, path=".")

    found = {(f["file"], f["parent"], f["name"], f["kind"], f["doc"]) for f in output["functions"]}
    assert found == {
        ("src/calc.py", "Calc", "add", "method", "Add two numbers."),
        ("src/calc.py", None, "main", "function", ""),
        ("web/app.js", None, "greet", "function", "Greets someone."),
        ("web/app.js", None, "twice", "function", ""),
        ("web/types.ts", "Shape", "area", "method", ""),
        ("web/types.ts", None, "id", "function", ""),
        ("core/lib.rs", None, "inc", "function", "Adds one."),
        ("core/lib.rs", "Point", "norm", "method", ""),
        ("cmd/main.go", None, "Run", "function", "Run runs."),
        ("cmd/main.go", "Server", "Stop", "method", ""),
        ("App.java", "App", "main", "method", "Entry point."),
    }
    assert output["count"] == 11 and len(output["files"]) == 6
    inc = next(f for f in output["functions"] if f["name"] == "inc")
    assert inc["signature"] == "pub fn inc(a: i32) -> i32" and inc["line"] == 2


def test_extract_functions_reads_inline_content_and_single_files(workspace: Path) -> None:
    inline = run_step(
        "extract_functions", workspace, content="def f(x):\n    pass\n", language="python"
    )
    assert [f["name"] for f in inline["functions"]] == ["f"]
    assert run_step("extract_functions", workspace, path="core/lib.rs")["count"] == 2
    (workspace / "notes.txt").write_text("def g(): pass")
    with pytest.raises(StepRunError, match="cannot tell the language"):
        run_step("extract_functions", workspace, path="notes.txt")


def test_deeply_nested_code_is_walked_without_exhausting_the_stack(workspace: Path) -> None:
    nested = "x = " + "[" * 5000 + "]" * 5000 + "\ndef after():\n    pass\n"

    output = run_step("extract_functions", workspace, content=nested, language="python")

    assert [f["name"] for f in output["functions"]] == ["after"]


def test_links_and_denied_files_are_not_read(
    workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.py"
    outside.write_text("def secret_function():\n    pass\n")
    os.symlink(outside, workspace / "src" / "linked.py")
    (workspace / ".git").mkdir()
    (workspace / ".git" / "hook.py").write_text("def hidden():\n    pass\n")

    names = {f["name"] for f in run_step("extract_functions", workspace, path=".")["functions"]}

    assert "secret_function" not in names and "hidden" not in names
    with pytest.raises(StepRunError):
        run_step("extract_functions", workspace, path="src/linked.py")


def test_generate_docs_writes_a_markdown_reference(workspace: Path) -> None:
    output = run_step(
        "generate_docs",
        workspace,
        path="src",
        output="docs/api.md",
        title="Calc API",
        include_undocumented=False,
    )

    text = (workspace / "docs" / "api.md").read_text()
    assert output["output"] == "docs/api.md" and output["functions"] == 1
    assert text == output["markdown"]
    assert text.startswith("# Calc API\n\n## `src/calc.py`\n\n### Calc.add\n")
    assert "def add(self, a, b)" in text and "Add two numbers." in text
    assert "main" not in text


def test_code_reading_steps_refuse_paths_outside_the_workspace_or_denied(workspace: Path) -> None:
    with pytest.raises(WorkspaceEscapeError):
        run_step("extract_functions", workspace, path="../elsewhere")
    with pytest.raises(WorkspaceEscapeError):
        run_step("generate_docs", workspace, path="src", output="../api.md")
    with pytest.raises(PolicyRefusedError, match=r"\[filesystem\.denied\]"):
        run_step("extract_functions", workspace, policy=Policy(), path=".git/hooks")
    with pytest.raises(PolicyRefusedError, match=r"\[filesystem\.denied\]"):
        run_step("generate_docs", workspace, policy=Policy(), path="src", output=".env")
    assert not (workspace / ".env").exists()
