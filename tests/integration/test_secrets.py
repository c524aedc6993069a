"""Secrets reach the runners that use them and nothing that is recorded, exported or shown."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rustchain.bootstrap.executor import build_executor
from rustchain.cli.app import app
from rustchain.domain.events.envelope import EventDraft
from rustchain.domain.language.secret_refs import secret_digest
from rustchain.domain.policy.model import CommandPolicy, NetworkPolicy, Policy
from rustchain.domain.runs.reexecution import reexecute, run_facts
from rustchain.domain.runs.run_events import (
    MissionStarted,
    StepFailed,
    StepStarted,
    run_event_payload,
    run_event_version,
    run_fact,
)
from rustchain.executor.application import ExecutorApplication
from rustchain.platform.nats.relay import JetStreamRelay
from rustchain.platform.nats.server import NatsServer
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.platform.storage.secret_store import FileSecretStore
from rustchain.steps import default_registry
from rustchain.verifier.policy_files import default_policy
from tests.integration.event_helpers import stream_messages
from tests.integration.sandbox_helpers import MECHANISMS, sandbox
from tests.unit.compile_helpers import plan_of

VALUE = "sk-live-7f3a9c0e51d24b8e"
TENANT = "acme"


@dataclass
class _Server:
    url: str
    authorizations: list[str] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[_Server]:
    """An http server that echoes the Authorization header it received in its answer."""
    received: list[str] = []

    class _Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            authorization = self.headers.get("Authorization") or ""
            received.append(authorization)
            payload = json.dumps({"you_sent": authorization}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield _Server(f"http://127.0.0.1:{httpd.server_address[1]}", received)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _loopback_policy(port: int) -> Policy:
    """The default policy, but 127.0.0.1:port over http, a shell and printenv allowed."""
    network = NetworkPolicy(
        schemes=["http"], allowed_hosts=["127.0.0.1"], denied_hosts=[], ports=[port]
    )
    commands = CommandPolicy(
        allowed_programs=[*CommandPolicy().allowed_programs, "printenv"],
        unmodelled_programs=["printenv"],
        allow_shell=True,
    )
    return Policy(network=network, commands=commands)


def _mission(url: str) -> str:
    return f"""\
version: "1.0"
name: secrets
config: {{fail_fast: false}}
steps:
  - id: call
    step_type: http
    parameters:
      url: {url}/v1
      headers: {{Authorization: "Bearer {{secrets.API_KEY}}"}}
  - id: echo
    step_type: command
    parameters: {{command: printenv, args: [APP_TOKEN], env: {{APP_TOKEN: "{{secrets.API_KEY}}"}}}}
  - id: leak
    step_type: command
    parameters:
      command: "echo $APP_TOKEN >&2; exit 3"
      shell: true
      env: {{APP_TOKEN: "{{secrets.API_KEY}}"}}
  - id: steal
    step_type: command
    parameters: {{command: 'cat "$HOME"/../../../secrets/acme/API_KEY', shell: true}}
"""


@dataclass
class _Deployment:
    home: Path
    executor: ExecutorApplication
    secrets: FileSecretStore
    mechanism: str


@pytest.fixture(params=MECHANISMS)
def deployment(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[_Deployment]:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("RUSTCHAIN_HOME", str(home))
    monkeypatch.delenv("RUSTCHAIN_SECRETS_DIR", raising=False)
    secrets = FileSecretStore.from_environ()
    store = open_event_store(EventStoreSettings(name="executor", home=home))
    executor = build_executor(
        {"RUSTCHAIN_HOME": str(home)},
        store,
        registry=default_registry(include_plugins=False),
        sandbox=sandbox(request.param),
        secrets=secrets,
        policy_for=None,
    )
    yield _Deployment(home, executor, secrets, request.param)
    store.close()


def _run(deployment: _Deployment, mission: str) -> str:
    executor = deployment.executor
    mission_id = executor.start(TENANT, plan_of(mission), {})
    asyncio.run(executor.drive(TENANT, mission_id))
    return mission_id


def _every_byte_under(folder: Path, but: str | None = None) -> bytes:
    files = [p for p in sorted(folder.rglob("*")) if p.is_file()]
    return b"".join(p.read_bytes() for p in files if but is None or but not in p.parts)


def test_a_secret_reaches_its_runners_and_no_record_export_or_output(
    deployment: _Deployment, server: _Server, tmp_path: Path
) -> None:
    runner = CliRunner()
    setting = runner.invoke(
        app, ["secret", "set", "--tenant", TENANT, "API_KEY"], input=VALUE + "\n"
    )
    assert setting.exit_code == 0, setting.output

    port = int(server.url.rsplit(":", 1)[1])
    deployment.executor.policy_for = lambda tenant: _loopback_policy(port)
    mission_id = _run(deployment, _mission(server.url))

    events = deployment.executor.store.mission_events(TENANT, mission_id)
    facts = [run_fact(e) for e in events]
    assert server.authorizations == [f"Bearer {VALUE}"], facts
    outputs = deployment.executor.load(TENANT, mission_id).steps
    # The runner got the value (the server echoed it, printenv printed it): both are masked.
    assert outputs["call"].output["body"] == {"you_sent": "Bearer ***"}
    assert outputs["echo"].output.strip() == "***"
    failed = {f.step_id: f.error for f in facts if isinstance(f, StepFailed)}
    assert "***" in failed["leak"]
    # The store is outside every sandbox: a program cannot read the file it keeps the value in.
    assert "***" not in failed["steal"], failed["steal"]
    assert "No such file" in failed["steal"] or "Permission denied" in failed["steal"]
    assert (deployment.home / "secrets" / TENANT / "API_KEY").read_text() == VALUE
    starts = {f.step_id: f for f in facts if isinstance(f, StepStarted)}
    assert starts["call"].inputs is not None
    assert starts["call"].inputs["headers"] == {"Authorization": "Bearer {secrets.API_KEY}"}
    [started] = [f for f in facts if isinstance(f, MissionStarted)]
    expected = secret_digest(started.secret_salt, "API_KEY", VALUE)
    digests = {k: s.secret_digests for k, s in starts.items()}
    assert digests == {
        **{k: {"API_KEY": expected} for k in ("call", "echo", "leak")},
        "steal": {},
    }
    for event in events:
        assert VALUE not in json.dumps(event.payload)
    deployment.executor.store.close()
    # Every byte of every store (the SQLite files, journals and all), read raw.
    stores = [p for p in deployment.home.rglob("*.sqlite*") if p.is_file()]
    assert stores
    assert all(VALUE.encode() not in p.read_bytes() for p in stores)
    # Nor any other file of the home (logs, workspaces), but the secret store's own.
    assert VALUE.encode() not in _every_byte_under(deployment.home, but="secrets")

    assert reexecute(run_facts(events)).agrees
    shown: list[str] = []
    for args in (
        ["audit", "replay", mission_id, "--tenant", TENANT],
        ["audit", "replay", mission_id, "--tenant", TENANT, "--json"],
        ["audit", "reexecute", mission_id, "--tenant", TENANT],
        ["audit", "export", "--tenant", TENANT, "--out", str(tmp_path / "export")],
        ["secret", "list", "--tenant", TENANT],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        shown.append(result.output)
    assert "reexecuted" in shown[2]
    assert shown[4] == "API_KEY\n"
    assert all(VALUE not in text for text in shown)
    assert VALUE.encode() not in _every_byte_under(tmp_path / "export")


def test_an_unknown_secret_fails_its_step_naming_it(deployment: _Deployment) -> None:
    mission = """\
version: "1.0"
name: unknown
steps:
  - {id: say, step_type: noop, parameters: {message: "token {secrets.NOPE}"}}
"""
    mission_id = _run(deployment, mission)

    facts = [run_fact(e) for e in deployment.executor.store.mission_events(TENANT, mission_id)]
    [failed] = [f for f in facts if isinstance(f, StepFailed)]
    assert failed.step_id == "say"
    assert failed.error.startswith("unknown secret 'NOPE': the tenant has no secret of that name")
    assert reexecute(run_facts(deployment.executor.store.mission_events(TENANT, mission_id))).agrees


def test_the_executor_refuses_a_secret_in_a_command_line(
    deployment: _Deployment, tmp_path: Path
) -> None:
    deployment.secrets.set(TENANT, "API_KEY", VALUE)
    deployment.executor.policy_for = lambda tenant: default_policy()
    mission = """\
version: "1.0"
name: argv
steps:
  - {id: say, step_type: command, parameters: {command: echo, args: ["{secrets.API_KEY}"]}}
"""
    mission_id = _run(deployment, mission)

    facts = [run_fact(e) for e in deployment.executor.store.mission_events(TENANT, mission_id)]
    [failed] = [f for f in facts if isinstance(f, StepFailed)]
    assert failed.error == (
        "[data_flow.secrets] parameter args[0]: the secret 'API_KEY' may not reach a command"
        " (data_flow.secrets_to)"
    )


def test_rustchain_run_shows_no_secret(
    deployment: _Deployment, server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment.secrets.set(TENANT, "API_KEY", VALUE)
    monkeypatch.setenv("RUSTCHAIN_SANDBOX", deployment.mechanism)
    port = server.url.rsplit(":", 1)[1]
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "network: {schemes: [http], allowed_hosts: [127.0.0.1], denied_hosts: [], "
        f"ports: [{port}]}}\n"
        "commands: {allowed_programs: [printenv], unmodelled_programs: [printenv]}\n"
    )
    mission = tmp_path / "mission.yaml"
    mission.write_text(
        "\n".join(_mission(server.url).splitlines()[:12])
        + "\noutputs: {answer: '{call.body}', printed: '{echo.output}'}\n"
    )

    result = CliRunner().invoke(
        app, ["run", str(mission), "--tenant", TENANT, "--policy", str(policy)]
    )

    assert result.exit_code == 0, result.output
    assert server.authorizations == [f"Bearer {VALUE}"]
    assert "***" in result.output
    assert VALUE not in result.output


class _BrokenStore:
    """A secret store whose files cannot be read."""

    def get(self, tenant: str, name: str) -> str | None:
        raise PermissionError(13, "Permission denied")


def test_a_secret_store_that_cannot_be_read_fails_the_step_not_the_executor(
    tmp_path: Path,
) -> None:
    store = open_event_store(EventStoreSettings(name="executor", home=tmp_path))
    executor = build_executor(
        {"RUSTCHAIN_HOME": str(tmp_path)},
        store,
        registry=default_registry(include_plugins=False),
        workspaces=tmp_path / "ws",
        secrets=_BrokenStore(),
        policy_for=None,
    )
    mission = """\
version: "1.0"
name: broken-store
steps:
  - {id: say, step_type: noop, parameters: {message: "token {secrets.API_KEY}"}}
"""
    mission_id = executor.start(TENANT, plan_of(mission), {})

    run = asyncio.run(executor.drive(TENANT, mission_id))

    facts = [run_fact(e) for e in store.mission_events(TENANT, mission_id)]
    [failed] = [f for f in facts if isinstance(f, StepFailed)]
    assert failed.error == "secret 'API_KEY' could not be read: Permission denied"
    assert run.outcome == "failed"
    store.close()


def test_jetstream_receives_the_missions_events_without_the_secret(
    deployment: _Deployment, server: _Server, nats_server: NatsServer
) -> None:
    deployment.secrets.set(TENANT, "API_KEY", VALUE)
    port = int(server.url.rsplit(":", 1)[1])
    deployment.executor.policy_for = lambda tenant: _loopback_policy(port)
    mission_id = _run(deployment, _mission(server.url))
    store = deployment.executor.store

    asyncio.run(JetStreamRelay(store, nats_server.url).catch_up(timeout=30))

    messages = asyncio.run(stream_messages(nats_server.url, TENANT))
    assert [m.event.id for m in messages] == [
        e.id for e in store.mission_events(TENANT, mission_id)
    ]
    assert server.authorizations == [f"Bearer {VALUE}"]
    assert all(VALUE not in repr(m) for m in messages)
    assert any("{secrets.API_KEY}" in repr(m.event.payload) for m in messages)


class _Store:
    """Secrets in memory."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, tenant: str, name: str) -> str | None:
        return self.values.get(name)


def test_after_a_crash_the_rerun_gets_the_secret_and_its_output_is_masked(
    tmp_path: Path,
) -> None:
    store = open_event_store(EventStoreSettings(name="executor", home=tmp_path))
    registry = default_registry(include_plugins=False)
    environ = {"RUSTCHAIN_HOME": str(tmp_path)}
    first = build_executor(
        environ, store, registry=registry, secrets=_Store({"K": VALUE}), policy_for=None
    )
    mission = """\
version: "1.0"
name: crash
steps:
  - id: say
    step_type: noop
    retry: {idempotent: true}
    parameters: {message: "token {secrets.K}"}
"""
    mission_id = first.start(TENANT, plan_of(mission), {})
    # The executor recorded the start of the attempt, then died before its result.
    started = StepStarted(step_id="say", attempt=1, inputs={"message": "token {secrets.K}"})
    store.append(
        [
            EventDraft(
                id=str(uuid.uuid4()),
                tenant=TENANT,
                mission_id=mission_id,
                service="executor",
                aggregate_id=mission_id,
                aggregate_version=2,
                type="StepStarted",
                version=run_event_version(started),
                occurred_at=datetime.now(UTC),
                payload=run_event_payload(started),
            )
        ]
    )
    second = build_executor(
        environ, store, registry=registry, secrets=_Store({"K": VALUE}), policy_for=None
    )

    run = asyncio.run(second.drive(TENANT, mission_id))

    assert run.outcome == "succeeded"
    assert run.steps["say"].output == "token ***"
    events = store.mission_events(TENANT, mission_id)
    assert all(VALUE not in json.dumps(e.payload) for e in events)
    rerun = [run_fact(e) for e in events if e.type == "StepStarted"][-1]
    assert isinstance(rerun, StepStarted) and rerun.attempt == 2
    assert set(rerun.secret_digests) == {"K"}
    store.close()
