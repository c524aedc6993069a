"""Through the executor: an ssh_execute step logs in with the tenant's secret, which reaches the
SSH server and no recorded event; a step the tenant's `ssh` section does not grant fails."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import ClassVar

import asyncssh

from rustchain.bootstrap.executor import build_executor
from rustchain.domain.policy.model import Policy
from rustchain.domain.policy.remote import SshPolicy
from rustchain.domain.runs.run_events import StepFailed, StepStarted, StepSucceeded, run_fact
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.platform.storage.secret_store import FileSecretStore
from rustchain.steps import default_registry
from tests.unit.compile_helpers import plan_of

TENANT = "acme"
VALUE = "ssh-pass-51d24b8e7f3a9c0e"


class _Server(asyncssh.SSHServer):
    passwords: ClassVar[list[str]] = []

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        self.passwords.append(password)
        return password == VALUE


async def _handle(process: asyncssh.SSHServerProcess[str]) -> None:
    process.stdout.write(f"ran {process.command}\n")
    process.exit(0)


def _mission(port: int) -> str:
    return f"""\
version: "1.0"
name: ssh-with-a-secret
config: {{fail_fast: false}}
steps:
  - id: login
    step_type: ssh_execute
    parameters:
      host: 127.0.0.1
      port: {port}
      username: deploy
      password: "{{secrets.SSH_PASSWORD}}"
      command: uptime
  - id: root
    step_type: ssh_execute
    parameters:
      host: 127.0.0.1
      port: {port}
      username: root
      password: "{{secrets.SSH_PASSWORD}}"
      command: uptime
"""


def test_ssh_execute_logs_in_with_the_tenants_secret_and_records_no_value(tmp_path: Path) -> None:
    secrets = FileSecretStore(tmp_path / "secrets")
    secrets.set(TENANT, "SSH_PASSWORD", VALUE)
    store = open_event_store(EventStoreSettings(name="executor", home=tmp_path))
    executor = build_executor(
        {**os.environ, "RUSTCHAIN_HOME": str(tmp_path)},
        store,
        registry=default_registry(include_plugins=False),
        policy_for=None,  # set below, once the server's port is known
        secrets=secrets,
    )
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    public = host_key.export_public_key("openssh").decode().strip()

    async def scenario() -> str:
        server = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            server_factory=_Server,
            process_factory=_handle,
        )
        port = server.sockets[0].getsockname()[1]
        ssh = SshPolicy(
            hosts=["127.0.0.1"],
            users=["deploy"],
            ports=[port],
            known_hosts=[f"[127.0.0.1]:{port} {public}"],
        )
        executor.policy_for = lambda tenant: Policy(ssh=ssh)
        try:
            mission_id = executor.start(TENANT, plan_of(_mission(port)), {})
            await executor.drive(TENANT, mission_id)
            return mission_id
        finally:
            server.close()
            await server.wait_closed()

    mission_id = asyncio.run(scenario())

    events = store.mission_events(TENANT, mission_id)
    facts = [run_fact(e) for e in events]
    completed = {f.step_id: f for f in facts if isinstance(f, StepSucceeded)}
    failed = {f.step_id: f.error for f in facts if isinstance(f, StepFailed)}
    started = {f.step_id: f for f in facts if isinstance(f, StepStarted)}
    assert _Server.passwords == [VALUE]
    assert "login" in completed
    assert "[ssh.user]" in failed["root"]
    assert started["login"].inputs is not None
    assert started["login"].inputs["password"] == "{secrets.SSH_PASSWORD}"
    assert all(VALUE not in json.dumps(event.payload) for event in events)
    store.close()
