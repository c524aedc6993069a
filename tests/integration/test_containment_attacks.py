"""Issue 11's attacks, each as a mission run by the executor with the verifier bypassed.

The executor here gets no policy at all (so no runtime re-check of the verifier's rules either):
what holds is the sandbox, the workspace-beneath file access and the resolved-address checks
alone. The layout is a deployment's: `home/` holds its key and token and `home/workspaces/`
the tenants' workspaces; `outside/` is any other folder of the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rustchain.bootstrap.executor import build_executor
from rustchain.domain.policy.model import Policy
from rustchain.domain.runs.run_events import MissionFinished, StepFailed, StepSucceeded, run_fact
from rustchain.executor.application import ExecutorApplication
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.steps import default_registry
from tests.conditions import wait_until_sync
from tests.integration.http_fixtures import LocalServer, json_answer, serve
from tests.integration.sandbox_helpers import MECHANISMS, sandbox
from tests.unit.compile_helpers import plan_of

SECRET = "s3cr3t-0f-the-deployment"
OTHER_TENANT_SECRET = "alpha-private-notes"


@dataclass
class Deployment:
    """A deployment's folders and an executor on them, with one sandbox mechanism."""

    root: Path
    executor: ExecutorApplication

    @property
    def home(self) -> Path:
        return self.root / "home"

    def run(self, mission: str, tenant: str = "beta") -> tuple[str, list[object], str]:
        """Run a mission; its outcome, its facts, and every stored byte of its events."""
        mission_id = self.executor.start(tenant, plan_of(mission), {})
        asyncio.run(self.executor.drive(tenant, mission_id))
        stored = self.executor.store.mission_events(tenant, mission_id)
        facts = [run_fact(e) for e in stored]
        [finished] = [f for f in facts if isinstance(f, MissionFinished)]
        record = json.dumps([e.payload for e in stored])
        return finished.outcome, facts, record

    def workspace(self, tenant: str) -> Path:
        [folder] = (self.home / "workspaces" / tenant).iterdir()
        return folder


@pytest.fixture(params=MECHANISMS)
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    home = tmp_path / "home"
    (home / "workspaces" / "alpha" / "m0").mkdir(parents=True)
    (home / "jwt.key").write_text(SECRET)
    (home / "admin.token").write_text(SECRET)
    (home / "workspaces" / "alpha" / "m0" / "notes.txt").write_text(OTHER_TENANT_SECRET)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text(SECRET)
    (tmp_path / "stores").mkdir()
    store = open_event_store(EventStoreSettings(name="executor", home=tmp_path / "stores"))
    executor = build_executor(
        {"RUSTCHAIN_HOME": str(home)},
        store,
        registry=default_registry(include_plugins=False),
        sandbox=sandbox(request.param),
        policy_for=None,
    )
    yield Deployment(tmp_path, executor)
    store.close()


def _command(args: list[str], program: str, **extra: object) -> str:
    parameters = {"command": program, "args": args, **extra}
    return json.dumps(
        {
            "version": "1.0",
            "name": "attack",
            "config": {"fail_fast": False},
            "steps": [{"id": "attack", "step_type": "command", "parameters": parameters}],
        }
    )


@contextlib.contextmanager
def _http_server() -> Iterator[LocalServer]:
    with contextlib.contextmanager(serve)(lambda *_: json_answer({"type": "object"})) as server:
        yield server


def _port(server: LocalServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


@contextlib.contextmanager
def _tcp_listener() -> Iterator[socket.socket]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield listener
    finally:
        listener.close()


def _was_connected(listener: socket.socket) -> bool:
    """Whether a connection reached the listener (the kernel completes it before accept)."""
    readable, _, _ = select.select([listener], [], [], 0)
    return bool(readable)


def _secrets_absent(deployment: Deployment, record: str) -> None:
    assert SECRET not in record
    assert OTHER_TENANT_SECRET not in record


def test_find_exec_script_cannot_read_outside_or_other_tenants(deployment: Deployment) -> None:
    outside = deployment.root / "outside" / "secret"
    script = (
        f"cat {outside}; cat {deployment.home}/jwt.key {deployment.home}/admin.token;"
        " cat ../../alpha/*/notes.txt; cd ../..; ls -R; id"
    )
    _, _, record = deployment.run(
        _command([".", "-maxdepth", "0", "-exec", "sh", "-c", script, ";"], "find")
    )
    _secrets_absent(deployment, record)


def test_sort_compress_program_runs_only_inside_the_sandbox(deployment: Deployment) -> None:
    script = json.dumps(
        {
            "version": "1.0",
            "name": "attack",
            "steps": [
                {
                    "id": "input",
                    "step_type": "create_file",
                    "parameters": {"path": "in.txt", "content": "b\na\n" * 2000},
                },
                {
                    "id": "attack",
                    "step_type": "command",
                    "depends_on": ["input"],
                    "parameters": {
                        "command": "sort",
                        "args": ["-S", "1K", "--compress-program=sh", "in.txt"],
                        "env": {"LANG": "C"},
                    },
                },
            ],
        }
    )
    _, _, record = deployment.run(script)
    _secrets_absent(deployment, record)


@pytest.mark.parametrize(
    ("program", "args"),
    [
        ("sort", ["-o{outside}/written", "in.txt"]),
        ("cp", ["-t{outside}", "in.txt"]),
        ("sort", ["-o../../../../outside/written", "in.txt"]),
    ],
)
def test_options_with_attached_paths_cannot_write_outside(
    deployment: Deployment, program: str, args: list[str]
) -> None:
    outside = deployment.root / "outside"
    mission = json.loads(_command([a.format(outside=outside) for a in args], program))
    mission["steps"].insert(
        0, {"id": "input", "step_type": "create_file", "parameters": {"path": "in.txt"}}
    )
    mission["steps"][1]["depends_on"] = ["input"]
    deployment.run(json.dumps(mission))
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


@pytest.mark.parametrize(
    "target", ["{root}/outside/secret", "{home}/jwt.key", "{home}/admin.token"]
)
def test_date_f_cannot_read_the_deployments_secrets(deployment: Deployment, target: str) -> None:
    path = target.format(root=deployment.root, home=deployment.home)
    _, _, record = deployment.run(_command([f"-f{path}"], "date"))
    _secrets_absent(deployment, record)


def test_a_background_child_ends_with_its_step(deployment: Deployment) -> None:
    mission = _command(
        ["-c", "sleep 300 & echo $!; setsid sleep 301 & echo $!; echo started"], "sh"
    )
    outcome, facts, _ = deployment.run(mission)
    assert outcome == "succeeded"
    [succeeded] = [f for f in facts if isinstance(f, StepSucceeded)]
    assert "started" in str(succeeded.output)
    # The children's pids inside a PID namespace say nothing outside; look for the programs.
    wait_until_sync(
        lambda: not _processes_running("sleep 300") and not _processes_running("sleep 301"),
        10,
        "the step's background children are gone",
    )


def _processes_running(command_line: str) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        if text == command_line:
            return True
    return False


def test_a_command_cannot_connect_to_a_loopback_server(deployment: Deployment) -> None:
    with _tcp_listener() as listener:
        port = listener.getsockname()[1]
        mission = _command(["-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"], "bash")
        outcome, _, _ = deployment.run(mission)
        assert outcome == "failed"
        assert not _was_connected(listener)


def test_raw_os_errors_become_failures_that_name_the_parameter(deployment: Deployment) -> None:
    mission = json.dumps(
        {
            "version": "1.0",
            "name": "hostile",
            "config": {"fail_fast": False},
            "steps": [
                {
                    "id": "nul",
                    "step_type": "command",
                    "parameters": {"command": "echo", "args": ["a\u0000b"]},
                },
                {
                    "id": "huge",
                    "step_type": "command",
                    "parameters": {"command": "echo", "args": ["x" * 200_000]},
                },
                {
                    "id": "env",
                    "step_type": "command",
                    "parameters": {"command": "true", "env": {"A=B": "1"}},
                },
                {"id": "path", "step_type": "read_file", "parameters": {"path": "a\u0000b"}},
            ],
        }
    )
    _, facts, _ = deployment.run(mission)
    failures = {f.step_id: f.error for f in facts if isinstance(f, StepFailed)}
    assert set(failures) == {"nul", "huge", "env", "path"}
    for error in failures.values():
        for raw in ("Error:", "Errno", "Traceback"):
            assert raw not in error, error


def test_symlinks_out_of_the_workspace_are_not_followed(deployment: Deployment) -> None:
    outside = deployment.root / "outside"
    setup = {
        "id": "link",
        "step_type": "command",
        "parameters": {"command": "ln", "args": ["-s", str(outside), "door"]},
    }
    steps = [
        setup,
        {"id": "list", "step_type": "list_directory", "parameters": {"path": "door"}},
        {"id": "search", "step_type": "file_search", "parameters": {"pattern": "**/*"}},
        {"id": "read", "step_type": "read_file", "parameters": {"path": "door/secret"}},
        {
            "id": "write",
            "step_type": "create_file",
            "parameters": {"path": "door/planted", "content": "x"},
        },
    ]
    for step in steps[1:]:
        step["depends_on"] = ["link"]
    mission = json.dumps(
        {"version": "1.0", "name": "links", "config": {"fail_fast": False}, "steps": steps}
    )
    _, facts, record = deployment.run(mission)
    _secrets_absent(deployment, record)
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    failed = {f.step_id for f in facts if isinstance(f, StepFailed)}
    found = {f.step_id: f.output for f in facts if isinstance(f, StepSucceeded)}
    # Through the link nothing is listed, read or written; a search sees the link, not its target.
    assert failed == {"list", "read", "write"}
    assert "secret" not in json.dumps(found["search"])


def test_validate_schema_fetches_no_ref(deployment: Deployment) -> None:
    with _http_server() as server:
        schema = {
            "type": "object",
            "properties": {
                "a": {"$ref": f"{server.url}/schema.json"},
                "b": {"$ref": f"file://{deployment.root}/outside/secret"},
            },
        }
        steps = [
            {
                "id": "check",
                "step_type": "validate_schema",
                "parameters": {"data": {"a": 1, "b": 2}, "schema": schema},
            }
        ]
        mission = json.dumps({"version": "1.0", "name": "refs", "steps": steps})
        outcome, _, record = deployment.run(mission)
        assert outcome == "failed"
        assert server.requests == []
        _secrets_absent(deployment, record)


@pytest.mark.parametrize("host", ["0x7f000001", "2130706433", "127.1", "localhost", "[::1]"])
def test_http_to_a_loopback_address_in_any_form_is_refused(
    deployment: Deployment, host: str
) -> None:
    with _http_server() as server:
        steps = [
            {
                "id": "fetch",
                "step_type": "http",
                "parameters": {"url": f"http://{host}:{_port(server)}/", "method": "GET"},
            }
        ]
        outcome, _, _ = deployment.run(json.dumps({"version": "1.0", "name": "h", "steps": steps}))
        assert outcome == "failed"
        assert server.requests == []


def test_the_executor_environment_does_not_reach_a_step(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUSTCHAIN_DEPLOYMENT_SECRET", SECRET)
    _, _, record = deployment.run(_command([], "env"))
    assert "RUSTCHAIN_DEPLOYMENT_SECRET" not in record
    assert os.environ["RUSTCHAIN_DEPLOYMENT_SECRET"] == SECRET


def test_denied_paths_and_loader_variables_are_refused_at_run_time(
    deployment: Deployment,
) -> None:
    # The runners check concrete values against the tenant's policy again (here the default one),
    # whatever the verifier said; environment names against its allowlist even with no policy.
    attacks = {
        "hooks": {"command": "mkdir", "args": ["-p", ".git/hooks"]},
        "hook": {"command": "cp", "args": ["in.txt", ".git/hooks/pre-commit"]},
        "hook_attached": {"command": "cp", "args": ["-t.git/hooks", "in.txt"]},
        "dotenv": {"command": "cat", "args": [".env"]},
        "gconv": {"command": "true", "env": {"GCONV_PATH": "."}},
        "preload": {"command": "true", "env": {"LD_PRELOAD": "x.so"}},
        "bash_function": {"command": "true", "env": {"BASH_FUNC_ls%%": "() { id; }"}},
    }
    steps: list[dict[str, object]] = [
        {"id": "input", "step_type": "create_file", "parameters": {"path": "in.txt"}}
    ]
    steps += [
        {"id": name, "step_type": "command", "depends_on": ["input"], "parameters": p}
        for name, p in attacks.items()
    ]
    mission = json.dumps(
        {"version": "1.0", "name": "denied", "config": {"fail_fast": False}, "steps": steps}
    )
    deployment.executor.policy_for = lambda tenant: Policy()
    _, facts, _ = deployment.run(mission)
    failed = {f.step_id: f.error for f in facts if isinstance(f, StepFailed)}
    assert set(failed) == set(attacks), failed
    assert all("policy refuses it at run time" in e for e in failed.values()), failed
    assert not (deployment.workspace("beta") / ".git").exists()
