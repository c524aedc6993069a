"""File steps cannot be redirected out of the workspace: a link planted at the moment of the
open, a `..`, an absolute path; listings do not follow links; OS refusals are clean errors.
Every attack runs with the verifier bypassed (no policy) and with the default policy."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rustchain.domain.policy.model import Policy
from rustchain.steps import default_registry
from rustchain.steps.support import beneath, workspace_files, workspace_moves, workspace_walk
from rustchain.steps.support.runtime import StepContext, StepRunError, WorkspaceEscapeError
from rustchain.verifier.policy_files import default_policy

REGISTRY = default_registry(include_plugins=False)
SECRET = "SECRET-OUTSIDE-THE-WORKSPACE"


@pytest.fixture(params=["openat2", "walk"])
def mechanism(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs with both ways of opening beneath the workspace."""
    wanted = str(request.param)
    if wanted == "openat2" and beneath.mechanism() != "openat2":
        pytest.skip("this kernel has no openat2")
    monkeypatch.setattr(beneath, "mechanism", lambda: wanted)
    return wanted


@pytest.fixture(params=[None, "default"], ids=["no-policy", "default-policy"])
def policy(request: pytest.FixtureRequest) -> Policy | None:
    """With the verifier bypassed (no policy at run time) and with the default policy."""
    return None if request.param is None else default_policy()


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A workspace and, beside it, an outside folder holding a secret file."""
    workspace, outside = tmp_path / "ws", tmp_path / "outside"
    workspace.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    yield workspace, outside
    assert (outside / "secret.txt").read_text() == SECRET, "the outside file was changed"


def run(step_type: str, workspace: Path, policy: Policy | None = None, **parameters: Any) -> Any:
    """One attempt of a step, as the executor runs it."""
    definition = REGISTRY.types[step_type]
    params = definition.parameters.model_validate(parameters)
    context = StepContext("acme", "m1", "s1", workspace, 10, policy=policy)
    return asyncio.run(definition.run(params, context))  # type: ignore[attr-defined]


def swap_at_open(monkeypatch: pytest.MonkeyPatch, swap: Callable[[], None]) -> list[str]:
    """Run `swap` once, just before the step's first open beneath the workspace: the moment a
    parallel step would replace a checked path with a link."""
    opened: list[str] = []
    real = beneath.open_beneath

    def planting(dir_fd: int, relative: str, flags: int, mode: int = 0o666) -> int:
        if not opened:
            swap()
        opened.append(relative)
        return real(dir_fd, relative, flags, mode)

    for module in (workspace_files, workspace_moves, workspace_walk):
        monkeypatch.setattr(module, "open_beneath", planting)
    return opened


def replace_with_link(path: Path, target: Path) -> Callable[[], None]:
    """A swap: `path` (a file or a folder) becomes a link to `target`."""

    def swap() -> None:
        if path.is_dir():
            for child in path.iterdir():
                child.unlink()
            path.rmdir()
        elif path.exists():
            path.unlink()
        path.symlink_to(target)

    return swap


def test_a_file_swapped_for_a_link_at_the_open_is_not_written_through(
    layout: tuple[Path, Path],
    mechanism: str,
    policy: Policy | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workspace, outside = layout
    (workspace / "report.txt").write_text("mine")
    opened = swap_at_open(
        monkeypatch, replace_with_link(workspace / "report.txt", outside / "secret.txt")
    )

    with pytest.raises(WorkspaceEscapeError, match="symbolic link"):
        run("create_file", workspace, policy, path="report.txt", content="overwritten")
    assert opened


def test_a_folder_swapped_for_a_link_at_the_open_gets_no_new_file(
    layout: tuple[Path, Path],
    mechanism: str,
    policy: Policy | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workspace, outside = layout
    (workspace / "out").mkdir()
    swap_at_open(monkeypatch, replace_with_link(workspace / "out", outside))

    with pytest.raises(WorkspaceEscapeError, match="symbolic link"):
        run("create_file", workspace, policy, path="out/planted.txt", content="x")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


@pytest.mark.parametrize(
    ("step_type", "parameters"),
    [
        ("read_file", {"path": "data.txt"}),
        ("edit_file", {"path": "data.txt", "content": "overwritten"}),
        ("parse_json", {"path": "data.txt"}),
        ("copy_file", {"source": "data.txt", "destination": "copy.txt"}),
        ("move_file", {"source": "data.txt", "destination": "moved.txt"}),
        ("validate_schema", {"schema_path": "data.txt", "data": 1}),
    ],
)
def test_a_file_swapped_for_a_link_at_the_open_is_neither_read_nor_changed(
    layout: tuple[Path, Path],
    mechanism: str,
    policy: Policy | None,
    monkeypatch: pytest.MonkeyPatch,
    step_type: str,
    parameters: dict[str, Any],
) -> None:
    workspace, outside = layout
    (workspace / "data.txt").write_text("{}")
    swap_at_open(monkeypatch, replace_with_link(workspace / "data.txt", outside / "secret.txt"))

    with pytest.raises(WorkspaceEscapeError, match="symbolic link") as refused:
        run(step_type, workspace, policy, **parameters)
    assert SECRET not in str(refused.value)
    assert not (workspace / "copy.txt").exists()
    assert not (workspace / "moved.txt").exists()


def test_a_parent_swapped_for_a_link_keeps_delete_and_copy_inside(
    layout: tuple[Path, Path],
    mechanism: str,
    policy: Policy | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workspace, outside = layout
    (workspace / "sub").mkdir()
    (workspace / "sub/secret.txt").write_text("mine")
    (workspace / "a.txt").write_text("A")
    swap_at_open(monkeypatch, replace_with_link(workspace / "sub", outside))

    with pytest.raises(WorkspaceEscapeError):
        run("delete_file", workspace, policy, path="sub/secret.txt")
    with pytest.raises(WorkspaceEscapeError):
        run("copy_file", workspace, policy, source="a.txt", destination="sub/secret.txt")


_SWAPPER = """
import os, sys
from pathlib import Path
target, spare, secret = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
while True:  # each swap is an atomic rename over the name, as `mv` in a parallel step would do
    spare.write_text("mine")
    os.replace(spare, target)
    spare.symlink_to(secret)
    os.replace(spare, target)
"""


def test_a_parallel_swapper_never_gets_a_write_outside(
    layout: tuple[Path, Path], mechanism: str
) -> None:
    """The attack as it was run: another process swaps the file for a link, over and over.
    (Against the former realpath-then-open, 2,000 attempts wrote outside about 9 times.)"""
    workspace, outside = layout
    secret = outside / "secret.txt"
    arguments = [workspace / "report.txt", workspace / "spare", secret]
    swapper = subprocess.Popen([sys.executable, "-c", _SWAPPER, *map(str, arguments)])
    written_outside = 0
    try:
        for _ in range(2000):
            with contextlib.suppress(StepRunError):
                run("create_file", workspace, path="report.txt", content="overwritten")
            if secret.read_text() != SECRET:
                written_outside += 1
                secret.write_text(SECRET)
    finally:
        swapper.kill()
        swapper.wait()
    assert written_outside == 0


@pytest.mark.parametrize("written", ["door", "door/secret.txt", "inner/../door/secret.txt"])
def test_a_link_already_there_is_never_followed(
    layout: tuple[Path, Path], mechanism: str, policy: Policy | None, written: str
) -> None:
    workspace, outside = layout
    (workspace / "inner").mkdir()
    (workspace / "door").symlink_to(outside)

    for step_type, parameters in (
        ("read_file", {"path": written}),
        ("create_file", {"path": written, "content": "x"}),
        ("edit_file", {"path": written, "content": "x"}),
        ("tool", {"tool": "csv_loader", "parameters": {"file_path": written}}),
    ):
        with pytest.raises(StepRunError) as refused:
            run(step_type, workspace, policy, **parameters)
        assert SECRET not in str(refused.value)
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_a_link_inside_the_workspace_is_refused_too(
    tmp_path: Path, mechanism: str, policy: Policy | None
) -> None:
    (tmp_path / "notes.md").write_text("kept")
    (tmp_path / "alias.md").symlink_to(tmp_path / "notes.md")

    with pytest.raises(WorkspaceEscapeError, match=r"path 'alias\.md' is, or passes through"):
        run("read_file", tmp_path, policy, path="alias.md")


def test_delete_file_removes_a_link_not_its_target(
    layout: tuple[Path, Path], mechanism: str, policy: Policy | None
) -> None:
    workspace, outside = layout
    (workspace / "door").symlink_to(outside / "secret.txt")

    deleted = run("delete_file", workspace, policy, path="door")
    assert deleted == {"path": "door", "deleted": True, "existed": True}
    assert not (workspace / "door").is_symlink()


@pytest.mark.parametrize(
    "escape",
    ["../outside/secret.txt", "a/../../outside/secret.txt", "/etc/passwd", "ABSOLUTE"],
)
def test_dot_dot_and_absolute_paths_are_refused(
    layout: tuple[Path, Path], mechanism: str, policy: Policy | None, escape: str
) -> None:
    workspace, _ = layout
    (workspace / "inside.txt").write_text("in")
    written = str(workspace / "inside.txt") if escape == "ABSOLUTE" else escape

    for step_type, parameters in (
        ("read_file", {"path": written}),
        ("create_file", {"path": written, "content": "x"}),
        ("list_directory", {"path": written}),
        ("validate_schema", {"schema_path": written, "data": 1}),
    ):
        # The default policy refuses them before the runtime does; both say which rule.
        with pytest.raises(StepRunError, match=r"leaves the mission.s workspace|leave the work"):
            run(step_type, workspace, policy, **parameters)


def test_listing_shows_a_link_as_a_link_without_its_target_size(
    layout: tuple[Path, Path], mechanism: str, policy: Policy | None
) -> None:
    workspace, outside = layout
    (workspace / "src").mkdir()
    (workspace / "src/a.py").write_text("print(1)\n")
    (workspace / "to-dir").symlink_to(outside)
    (workspace / "to-file").symlink_to(outside / "secret.txt")

    listed = run("list_directory", workspace, policy, recursive=True)

    assert listed == [
        {"path": "src", "type": "directory", "size": 0},
        {"path": "src/a.py", "type": "file", "size": 9},
        {"path": "to-dir", "type": "link", "size": 0},
        {"path": "to-file", "type": "link", "size": 0},
    ]


def test_file_search_neither_descends_into_nor_reads_a_link(
    layout: tuple[Path, Path], mechanism: str, policy: Policy | None
) -> None:
    workspace, outside = layout
    (workspace / "notes.txt").write_text(f"not the {SECRET[:6]}\n")
    (workspace / "to-dir").symlink_to(outside)
    (workspace / "to-file.txt").symlink_to(outside / "secret.txt")

    assert run("file_search", workspace, policy, pattern="*.txt", contains="SECRET-") == []
    assert run("file_search", workspace, policy, pattern="*.txt") == [
        {"path": "notes.txt", "lines": []}
    ]


def test_file_search_matches_patterns_with_folders_as_rglob_did(
    tmp_path: Path, mechanism: str
) -> None:
    for name in ("src/a.py", "src/deep/b.py", "lib/src/c.py", "d.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x\n")

    def found(**parameters: Any) -> list[str]:
        return [hit["path"] for hit in run("file_search", tmp_path, **parameters)]

    assert found(pattern="src/*.py") == ["lib/src/c.py", "src/a.py"]
    assert found(pattern="*.py", path="src") == ["src/a.py", "src/deep/b.py"]
    assert found(pattern="src/**/*.py") == ["lib/src/c.py", "src/a.py", "src/deep/b.py"]
    with pytest.raises(StepRunError, match="pattern '/etc/\\*' must be a relative glob"):
        found(pattern="/etc/*")


@pytest.mark.parametrize(
    ("step_type", "parameters", "parameter"),
    [
        ("create_file", {"path": "a\x00b", "content": "x"}, "path"),
        ("read_file", {"path": "a\x00b"}, "path"),
        ("list_directory", {"path": "a\x00b"}, "path"),
        ("copy_file", {"source": "a.txt", "destination": "b\x00"}, "destination"),
        ("tool", {"tool": "csv_loader", "parameters": {"file_path": "x\x00"}}, "file_path"),
        ("validate_schema", {"schema_path": "s\x00.json", "data": 1}, "schema_path"),
        ("file_search", {"pattern": "*\x00"}, "pattern"),
    ],
)
def test_a_nul_byte_in_a_path_is_a_step_error_naming_the_parameter(
    tmp_path: Path, mechanism: str, step_type: str, parameters: dict[str, Any], parameter: str
) -> None:
    (tmp_path / "a.txt").write_text("A")

    with pytest.raises(StepRunError, match=f"^{parameter} "):
        run(step_type, tmp_path, **parameters)


@pytest.mark.parametrize("written", ["n" * 300, "d/" * 2100 + "f", "a.txt/x"])
def test_os_limits_are_step_errors_naming_the_parameter(
    tmp_path: Path, mechanism: str, written: str
) -> None:
    (tmp_path / "a.txt").write_text("A")

    for step_type, parameters in (
        ("create_file", {"path": written, "content": "x"}),
        ("read_file", {"path": written}),
        ("delete_file", {"path": written}),
        ("copy_file", {"source": "a.txt", "destination": written}),
    ):
        if step_type == "delete_file" and written == "a.txt/x":
            # Nothing is there (a file is not a folder): RustChain's delete_file succeeds then,
            # saying so (docs/compatibility.md).
            assert run(step_type, tmp_path, **parameters)["existed"] is False
            continue
        with pytest.raises(StepRunError) as refused:
            run(step_type, tmp_path, **parameters)
        assert str(refused.value).split(" ", 1)[0] in ("path", "destination", f"'{written}'")
        assert len(str(refused.value)) < 500, "an overlong name is shown capped"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_a_pipe_in_the_workspace_does_not_hang_a_read(tmp_path: Path, mechanism: str) -> None:
    os.mkfifo(tmp_path / "pipe")

    with pytest.raises(StepRunError, match="'pipe'"):
        run("read_file", tmp_path, path="pipe")
    with pytest.raises(StepRunError, match="'pipe'"):
        run("create_file", tmp_path, path="pipe", content="x")
    assert run("list_directory", tmp_path) == [{"path": "pipe", "type": "other", "size": 0}]


def test_file_steps_still_work_beneath_the_workspace(tmp_path: Path, mechanism: str) -> None:
    run("create_file", tmp_path, path="a/b/c.txt", content="one", permissions="640")
    run("edit_file", tmp_path, path="a/b/c.txt", content=" two", append=True)
    run("copy_file", tmp_path, source="a/b/c.txt", destination="a")
    run("move_file", tmp_path, source="a/c.txt", destination="d/e.txt")

    assert (tmp_path / "a/b/c.txt").read_text() == "one two"
    assert (tmp_path / "d/e.txt").read_text() == "one two"
    assert (tmp_path / "d/e.txt").stat().st_mode & 0o777 == 0o640
    assert not (tmp_path / "a/c.txt").exists()
    with pytest.raises(StepRunError, match="same file"):
        run("copy_file", tmp_path, source="d/e.txt", destination="d/e.txt")
    assert (tmp_path / "d/e.txt").read_text() == "one two"


def test_a_pattern_of_many_double_stars_stays_fast() -> None:
    pattern = ["**", "a*"] * 30 + ["b"]
    names = ["a"] * 60 + ["c"]

    assert not workspace_walk.matches(pattern, names)  # exponential without memoisation
    assert workspace_walk.matches(["**", "src", "*.py"], ["lib", "src", "c.py"])
