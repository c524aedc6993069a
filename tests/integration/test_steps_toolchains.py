"""compile_code, run_tests, format_code and lint_code with the toolchains of this machine, in the
sandbox: no network, nothing outside the workspace but the toolchain's own folders."""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rustchain.domain.policy.model import Policy
from rustchain.domain.policy.toolchains import ToolchainPolicy
from rustchain.steps.support.confined_runs import run_confined
from rustchain.steps.support.runtime import PolicyRefusedError, StepRunError
from rustchain.steps.support.sandboxing import SANDBOX_PATH
from rustchain.steps.support.toolchain_runs import DIRS_SETTING, ENV_SETTING, PATH_SETTING
from tests.integration.sandbox_helpers import MECHANISMS, sandboxed_context
from tests.integration.step_run_helpers import run_step

GRANTED = Policy(toolchains=ToolchainPolicy(allowed=["rust", "node", "python", "go"]))


def _rust_settings() -> dict[str, str]:
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.skip("no cargo on this machine")
    cargo_home = Path(os.environ.get("CARGO_HOME", Path(cargo).resolve().parent.parent))
    rustup_home = Path(os.environ.get("RUSTUP_HOME", Path.home() / ".rustup"))
    return {
        PATH_SETTING: str(Path(cargo).parent),
        DIRS_SETTING: f"{cargo_home}:{rustup_home}",
        ENV_SETTING: f"CARGO_HOME={cargo_home} RUSTUP_HOME={rustup_home}",
    }


def run_code_step(step_type: str, workspace: Path, **parameters: Any) -> Any:
    return run_step(step_type, workspace, policy=GRANTED, settings=_rust_settings(), **parameters)


@pytest.fixture
def crate(tmp_path: Path) -> Path:
    folder = tmp_path / "hello"
    (folder / "src").mkdir(parents=True)
    (folder / "Cargo.toml").write_text(
        '[package]\nname = "hello"\nversion = "0.1.0"\nedition = "2021"\n'
    )
    (folder / "src" / "main.rs").write_text(
        'fn main() {  println!("hi");  }\n\n#[test]\nfn adds() { assert_eq!(1 + 1, 2); }\n'
    )
    return tmp_path


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_rust_project_compiles_tests_formats_and_lints(crate: Path, mechanism: str) -> None:
    run = functools.partial(run_code_step, mechanism=mechanism)

    assert run("compile_code", crate, path="hello")["success"] is True
    tested = run("run_tests", crate, path="hello", language="rust")
    assert "test adds ... ok" in tested["stdout"]
    assert run("format_code", crate, path="hello") == {"formatted": True, "language": "rust"}
    assert 'fn main() {\n    println!("hi");\n}' in (crate / "hello/src/main.rs").read_text()
    assert run("lint_code", crate, path="hello")["success"] is True


def test_failures_say_what_the_toolchain_said(crate: Path) -> None:
    (crate / "hello/src/main.rs").write_text('fn main() { let x: i32 = "no"; }\n')
    with pytest.raises(StepRunError, match=r"(?s)Compilation failed: 'cargo check' exited .*E0308"):
        run_code_step("compile_code", crate, path="hello")
    (crate / "hello/src/main.rs").write_text(
        "fn main() {}\n#[test]\nfn bad() { assert!(false); }\n"
    )
    with pytest.raises(StepRunError, match=r"(?s)Tests failed: 'cargo test' .*bad"):
        run_code_step("run_tests", crate, path="hello")


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def test_node_project_runs_without_network_and_sees_only_its_workspace(
    tmp_path: Path, listener: int
) -> None:
    if shutil.which("npm", path=SANDBOX_PATH) is None:
        pytest.skip("no npm under /usr on this machine")
    secret = tmp_path.parent / f"{tmp_path.name}-secret.txt"
    secret.write_text("outside")
    project = tmp_path / "web"
    project.mkdir()
    (project / "package.json").write_text(
        '{"name": "web", "version": "1.0.0", "scripts": '
        '{"test": "node test.js", "build": "node -e \\"console.log(42)\\""}}'
    )
    (project / "test.js").write_text(
        "const fs = require('fs'); const net = require('net');\n"
        f"try {{ fs.readFileSync('{secret}'); console.log('READ'); }}"
        " catch (e) { console.log('no file'); }\n"
        f"const s = net.connect({listener}, '127.0.0.1');\n"
        "s.on('connect', () => { console.log('CONNECTED'); process.exit(0); });\n"
        "s.on('error', () => { console.log('no network'); process.exit(0); });\n"
    )

    tested = run_step("run_tests", tmp_path, policy=GRANTED, path="web", language="node")
    built = run_step("compile_code", tmp_path, policy=GRANTED, path="web", language="node")

    assert "no file" in tested["stdout"] and "no network" in tested["stdout"]
    assert "42" in built["stdout"]


def test_python_projects_compile_and_test(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text(
        "import unittest\nclass T(unittest.TestCase):\n    def test_a(self):\n        pass\n"
    )
    assert run_step("run_tests", tmp_path, policy=GRANTED, path=".", language="python")["success"]
    (tmp_path / "broken.py").write_text("def f(:\n")
    with pytest.raises(StepRunError, match="Compilation failed"):
        run_step("compile_code", tmp_path, policy=GRANTED, path=".", language="python")
    with pytest.raises(StepRunError, match="no format program"):
        run_step("format_code", tmp_path, policy=GRANTED, path=".", language="python")


def test_a_missing_toolchain_is_a_clear_error(tmp_path: Path) -> None:
    if shutil.which("go", path=SANDBOX_PATH) is not None:
        pytest.skip("go is installed here")
    with pytest.raises(StepRunError, match="the go toolchain is not installed on this executor"):
        run_step("compile_code", tmp_path, policy=GRANTED, path=".", language="go")


@pytest.mark.parametrize("step_type", ["compile_code", "run_tests", "format_code", "lint_code"])
def test_every_code_step_is_refused_without_a_grant_even_with_no_verifier(
    tmp_path: Path, step_type: str
) -> None:
    (tmp_path / "marker.rs").write_text("fn main() {}\n")
    with pytest.raises(PolicyRefusedError, match=r"\[toolchains\.allowed\]"):
        run_step(step_type, tmp_path, settings=_rust_settings(), path=".")


def test_toolchains_are_refused_unless_the_policy_grants_them(tmp_path: Path) -> None:
    # No tenant policy and no verifier: the default policy grants no toolchain.
    with pytest.raises(PolicyRefusedError, match=r"\[toolchains\.allowed\]"):
        run_step("run_tests", tmp_path, path=".", language="python")
    only_rust = Policy(toolchains=ToolchainPolicy(allowed=["rust"]))
    with pytest.raises(PolicyRefusedError, match=r"\[toolchains\.allowed\]"):
        run_step("compile_code", tmp_path, policy=only_rust, path=".", language="node")
    with pytest.raises(PolicyRefusedError, match=r"\[filesystem\.workspace\]"):
        run_step("compile_code", tmp_path, policy=GRANTED, path="..", language="python")
    with pytest.raises(StepRunError, match="language"):
        run_step("compile_code", tmp_path, policy=GRANTED, path=".", language="cobol")


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_toolchain_folders_are_shown_read_only_and_missing_ones_skipped(
    tmp_path: Path, mechanism: str
) -> None:
    workspace, toolchain = tmp_path / "ws", tmp_path / "toolchain"
    workspace.mkdir()
    toolchain.mkdir()
    (toolchain / "version").write_text("1.0\n")
    context = sandboxed_context(workspace, mechanism=mechanism)
    script = f"cat {toolchain}/version; echo changed > {toolchain}/version || echo refused"
    env = {"PATH": SANDBOX_PATH}

    result = asyncio.run(
        run_confined(
            context,
            ["sh", "-c", script],
            workspace,
            env,
            what="sh",
            read_only=[toolchain, tmp_path / "missing"],
        )
    )

    unlisted = asyncio.run(
        run_confined(context, ["cat", f"{toolchain}/version"], workspace, env, what="cat")
    )

    assert result.stdout.decode().split() == ["1.0", "refused"]
    assert (toolchain / "version").read_text() == "1.0\n"
    said = unlisted.stderr.decode()
    assert unlisted.status != 0
    # bubblewrap does not show the folder; Landlock shows it but refuses to open it.
    assert "No such file" in said or "Permission denied" in said
