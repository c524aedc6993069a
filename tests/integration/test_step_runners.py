"""Step runners against the real file system and real processes, in a temporary workspace."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from rustchain.steps import default_registry
from rustchain.steps.support.runtime import PolicyRefusedError, StepRunError, WorkspaceEscapeError
from tests.integration.sandbox_helpers import sandboxed_context

REGISTRY = default_registry(include_plugins=False)


def run_step(step_type: str, workspace: Path, timeout: float = 10, **parameters: Any) -> Any:
    """Validate the parameters as the loader does and run one attempt."""
    definition = REGISTRY.types[step_type]
    params = definition.parameters.model_validate(parameters)
    context = sandboxed_context(workspace, timeout)
    runner = getattr(definition, "run", None)
    assert runner is not None, f"{step_type} has no runner"
    return asyncio.run(runner(params, context))


def test_create_file_writes_content_and_creates_folders(tmp_path: Path) -> None:
    output = run_step(
        "create_file", tmp_path, path="a/b/hello.txt", content="hi", permissions="600"
    )

    assert (tmp_path / "a/b/hello.txt").read_text() == "hi"
    assert (tmp_path / "a/b/hello.txt").stat().st_mode & 0o777 == 0o600
    assert output == {"path": "a/b/hello.txt", "bytes": 2}


@pytest.mark.parametrize("escape", ["../outside.txt", "a/../../outside.txt", "/etc/passwd"])
def test_file_steps_refuse_paths_that_leave_the_workspace(tmp_path: Path, escape: str) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()

    with pytest.raises(WorkspaceEscapeError, match="leaves the mission's workspace"):
        run_step("create_file", workspace, path=escape, content="x")
    assert not (tmp_path / "outside.txt").exists()


def test_a_symlink_out_of_the_workspace_is_refused(tmp_path: Path) -> None:
    workspace, outside = tmp_path / "ws", tmp_path / "secret"
    workspace.mkdir()
    outside.mkdir()
    (workspace / "door").symlink_to(outside)

    with pytest.raises(WorkspaceEscapeError):
        run_step("create_file", workspace, path="door/x.txt", content="x")
    with pytest.raises(WorkspaceEscapeError):
        run_step("read_file", workspace, path="door")
    assert list(outside.iterdir()) == []


def test_edit_file_replaces_appends_and_reports_a_missing_text(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("one two one")

    assert (
        run_step("edit_file", tmp_path, path="notes.txt", find="one", replace="1")["replacements"]
        == 2
    )
    run_step("edit_file", tmp_path, path="notes.txt", content="!", append=True)
    assert (tmp_path / "notes.txt").read_text() == "1 two 1!"
    with pytest.raises(StepRunError, match="'zzz' does not occur"):
        run_step("edit_file", tmp_path, path="notes.txt", find="zzz", replace="")


def test_copy_move_and_delete_stay_in_the_workspace(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("A")

    run_step("copy_file", tmp_path, source="a.txt", destination="b.txt")
    run_step("move_file", tmp_path, source="b.txt", destination="sub/c.txt")
    run_step("delete_file", tmp_path, path="a.txt")

    assert sorted(p.name for p in tmp_path.rglob("*.txt")) == ["c.txt"]
    assert run_step("delete_file", tmp_path, path="a.txt") == {
        "path": "a.txt",
        "existed": False,
        "deleted": False,
    }
    with pytest.raises(StepRunError, match="does not exist"):
        run_step("delete_file", tmp_path, path="a.txt", missing_ok=False)


def test_read_file_returns_text_and_refuses_files_over_its_limit(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("x" * 100)

    assert run_step("read_file", tmp_path, path="big.txt") == "x" * 100
    with pytest.raises(StepRunError, match=r"'big\.txt' is larger than 10 bytes"):
        run_step("read_file", tmp_path, path="big.txt", max_bytes=10)


def test_list_directory_and_file_search(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src/a.py").write_text("# TODO: fix\nprint(1)\n")
    (tmp_path / "src/b.py").write_text("print(2)\n")
    (tmp_path / "README.md").write_text("hi")

    listed = run_step("list_directory", tmp_path, path=".", recursive=True, pattern="*.py")
    found = run_step("file_search", tmp_path, pattern="*.py", contains="TODO")

    assert [e["path"] for e in listed] == ["src/a.py", "src/b.py"]
    assert found == [{"path": "src/a.py", "lines": [1]}]


def test_command_runs_argv_in_the_workspace_and_returns_stdout(tmp_path: Path) -> None:
    output = run_step("command", tmp_path, command="sh", args=["-c", 'pwd; echo "$0"', "a b"])

    assert output.splitlines() == [str(tmp_path.resolve()), "a b"]


def test_command_runs_in_working_dir_or_its_alias_working_directory(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()

    assert run_step("command", tmp_path, command="pwd", working_dir="sub") == str(
        (tmp_path / "sub").resolve()
    )
    assert run_step("command", tmp_path, command="pwd", working_directory="sub") == str(
        (tmp_path / "sub").resolve()
    )
    with pytest.raises(ValidationError, match="not both"):
        run_step("command", tmp_path, command="pwd", working_dir="sub", working_directory=".")


@pytest.mark.parametrize("outside", ["/tmp", "..", "sub/../.."])
def test_command_working_dir_outside_the_workspace_is_refused_when_it_runs(
    tmp_path: Path, outside: str
) -> None:
    workspace = tmp_path / "workspace"
    (workspace / "sub").mkdir(parents=True)

    with pytest.raises(StepRunError, match="workspace"):
        run_step("command", workspace, command="pwd", working_dir=outside)


def test_command_args_are_not_interpreted_by_a_shell(tmp_path: Path) -> None:
    output = run_step("command", tmp_path, command="echo", args=["$HOME; rm -rf /"])

    assert output == "$HOME; rm -rf /"


def test_command_environment_is_scrubbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUSTCHAIN_TEST_SECRET", "hunter2")

    output = run_step("command", tmp_path, command="env", env={"APP_GREETING": "hi"})

    assert "hunter2" not in output
    assert "APP_GREETING=hi" in output.splitlines()
    assert f"HOME={tmp_path}" in output.splitlines()


def test_command_failure_reports_status_and_stderr(tmp_path: Path) -> None:
    with pytest.raises(StepRunError, match=r"exited with status 3: oops"):
        run_step("command", tmp_path, command="sh", args=["-c", "echo oops >&2; exit 3"])


def test_command_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "survived"
    script = f"(sleep 2; touch {marker}) & sleep 30"

    with pytest.raises(StepRunError, match=r"did not finish within 0\.5 s"):
        run_step("command", tmp_path, timeout=0.5, command="sh", args=["-c", script])
    # The child's group was killed: no process of it is left to create the marker.
    assert not any(
        script
        in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        for pid in os.listdir("/proc")
        if pid.isdigit() and Path(f"/proc/{pid}/cmdline").exists()
    )


def test_command_output_is_capped(tmp_path: Path) -> None:
    with pytest.raises(StepRunError, match=r"wrote more than max_output_bytes \(100\)"):
        run_step("command", tmp_path, command="yes", args=["y"], max_output_bytes=100, timeout=30)


def test_command_asking_more_output_than_the_policy_bound_is_refused_before_running(
    tmp_path: Path,
) -> None:
    with pytest.raises(StepRunError) as refused:
        run_step("command", tmp_path, command="touch", args=["ran"], max_output_bytes=5_000_000)
    assert str(refused.value).startswith(
        "[commands.output] max_output_bytes asks for more than 524288 bytes"
        " (commands.max_output_bytes)"
    )
    assert not (tmp_path / "ran").exists()


def test_command_output_is_capped_at_the_policy_bound_by_default(tmp_path: Path) -> None:
    with pytest.raises(StepRunError, match=r"wrote more than max_output_bytes \(524288\)"):
        run_step("command", tmp_path, command="printf", args=["%600000s", "x"], timeout=30)


def test_command_that_does_not_exist_says_so(tmp_path: Path) -> None:
    with pytest.raises(StepRunError, match="program 'no-such-program' not found"):
        run_step("command", tmp_path, command="no-such-program")


def test_shell_mode_runs_a_pipeline(tmp_path: Path) -> None:
    assert run_step("command", tmp_path, command="printf 'a\\nb\\n' | wc -l", shell=True) == "2"


def test_parse_json_and_yaml(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("a: [1, 2]\n")

    assert run_step("parse_json", tmp_path, content='{"x": [1, true]}') == {"x": [1, True]}
    assert run_step("parse_yaml", tmp_path, path="c.yaml") == {"a": [1, 2]}
    with pytest.raises(StepRunError, match="invalid JSON"):
        run_step("parse_json", tmp_path, content="{")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}" if i > 1 else "*a"] * 9) + "]\n"
        for i in range(1, 10)
    )
    with pytest.raises(StepRunError, match="invalid YAML"):
        run_step("parse_yaml", tmp_path, content=bomb)


def _guarded(step_type: str, workspace: Path, **parameters: Any) -> Any:
    """Run one attempt with the default policy enforced at run time."""
    from rustchain.verifier.policy_files import default_policy

    definition = REGISTRY.types[step_type]
    params = definition.parameters.model_validate(parameters)
    context = sandboxed_context(workspace, policy=default_policy())
    return asyncio.run(definition.run(params, context))  # type: ignore[attr-defined]


def test_runners_refuse_what_the_policy_refuses_on_concrete_values(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SECRET=1")

    with pytest.raises(PolicyRefusedError, match=r"\[filesystem\.denied\]"):
        _guarded("create_file", tmp_path, path="src/.git/config", content="x")
    with pytest.raises(PolicyRefusedError, match=r"\[command\.program\]"):
        _guarded("command", tmp_path, command="rm", args=["-rf", "x"])
    with pytest.raises(PolicyRefusedError, match=r"\[command\.shell\]"):
        _guarded("command", tmp_path, command="echo hi", shell=True)
    with pytest.raises(PolicyRefusedError, match=r"\[network\.host\]"):
        _guarded("http", tmp_path, url="https://169.254.169.254/latest/meta-data")
    with pytest.raises(PolicyRefusedError, match=r"\[filesystem\.denied\]"):
        _guarded("file_search", tmp_path, pattern="*.env")
    assert not (tmp_path / "src").exists()


def test_command_runner_refuses_program_options_that_reach_outside(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("b\na\n")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"

    with pytest.raises(PolicyRefusedError, match=r"\[command\.option\]"):
        _guarded(
            "command", tmp_path, command="find", args=[".", "-exec", "touch", str(outside), ";"]
        )
    with pytest.raises(PolicyRefusedError, match=r"\[command\.option\]"):
        _guarded("command", tmp_path, command="sort", args=["--compress-program=sh", "in.txt"])
    with pytest.raises(PolicyRefusedError, match=r"\[filesystem\.workspace\]"):
        _guarded("command", tmp_path, command="sort", args=[f"-uo{outside}", "in.txt"])
    with pytest.raises(PolicyRefusedError, match=r"\[filesystem\.denied\]"):
        _guarded("command", tmp_path, command="date", args=["-f.env"])
    assert not outside.exists()
    assert _guarded("command", tmp_path, command="sort", args=["-u", "in.txt"]) == "a\nb"


def test_command_environment_names_are_checked_without_a_policy_too(tmp_path: Path) -> None:
    for name in ("GCONV_PATH", "LOCPATH", "TMPDIR", "GLIBC_TUNABLES", "BASH_FUNC_x%%"):
        with pytest.raises(PolicyRefusedError, match=r"\[command\.environment\]"):
            run_step("command", tmp_path, command="env", env={name: "."})


def test_command_text_is_split_into_program_and_arguments(tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text("#!/bin/sh\necho ran\n")

    _guarded("command", tmp_path, command="chmod +x run.sh")

    assert (tmp_path / "run.sh").stat().st_mode & 0o111


def test_rustchain_tools_csv_and_json_yaml_loaders_and_aliases(tmp_path: Path) -> None:
    (tmp_path / "sales.csv").write_text("region,amount\nnorth,3\nsouth,5\n")
    (tmp_path / "config.yaml").write_text("retries: 3\nhosts: [a, b]\n")

    csv_rows = run_step("tool", tmp_path, tool="csv_loader", parameters={"file_path": "sales.csv"})
    loaded = run_step(
        "tool", tmp_path, tool="json_yaml_loader", parameters={"file_path": "config.yaml"}
    )
    run_step("tool", tmp_path, tool="file_create", parameters={"path": "a.txt", "content": "A"})

    assert csv_rows == {
        "columns": ["region", "amount"],
        "rows": [{"region": "north", "amount": "3"}, {"region": "south", "amount": "5"}],
        "row_count": 2,
    }
    assert loaded == {"retries": 3, "hosts": ["a", "b"]}
    assert (tmp_path / "a.txt").read_text() == "A"
