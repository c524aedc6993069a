"""service_health, ping_host, websocket_connect and ssh_execute against real servers on loopback,
and their runtime refusals with the verifier bypassed (no policy: the default one applies)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from websockets.asyncio.server import ServerConnection, serve

from rustchain.domain.policy.model import NetworkPolicy, Policy
from rustchain.domain.policy.remote import SshPolicy
from rustchain.steps.support.runtime import PolicyRefusedError, StepRunError
from tests.integration.ftps_server import write_self_signed
from tests.integration.http_fixtures import json_answer
from tests.integration.http_fixtures import serve as serve_http
from tests.integration.step_run_helpers import attempt


def run(step_type: str, workspace: Path, policy: Policy | None = None, **parameters: Any) -> Any:
    """`attempt`, from synchronous code."""
    return asyncio.run(attempt(step_type, workspace, policy, **parameters))


def loopback_network(*ports: int, schemes: tuple[str, ...] = ("http",)) -> Policy:
    """A policy whose `network` section lets steps reach 127.0.0.1 on these ports."""
    network = NetworkPolicy(
        schemes=list(schemes), allowed_hosts=["127.0.0.1"], denied_hosts=[], ports=list(ports)
    )
    return Policy(network=network)


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP server on loopback that accepts connections (the kernel's backlog answers)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield int(server.getsockname()[1])


# service_health


def test_service_health_connects_to_a_listening_port(listener: int, tmp_path: Path) -> None:
    policy = loopback_network(listener)
    output = run("service_health", tmp_path, policy, service="api", host="127.0.0.1", port=listener)

    assert output["healthy"] is True
    assert output["error"] is None
    assert (output["service"], output["host"], output["port"]) == ("api", "127.0.0.1", listener)


def test_service_health_reports_a_closed_port_as_unhealthy(tmp_path: Path) -> None:
    port = free_port()
    output = run(
        "service_health",
        tmp_path,
        loopback_network(port),
        service="db",
        host="127.0.0.1",
        port=port,
    )

    assert output["healthy"] is False
    assert "cannot connect to 127.0.0.1 port" in output["error"]


def test_service_health_gets_a_url(tmp_path: Path) -> None:
    def answer(method: str, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
        return json_answer({"ok": True}) if path == "/up" else json_answer({}, status=503)

    for server in serve_http(answer):
        port = int(server.url.rsplit(":", 1)[1])
        policy = loopback_network(port)
        up = run("service_health", tmp_path, policy, service="web", url=f"{server.url}/up")
        down = run("service_health", tmp_path, policy, service="web", url=f"{server.url}/down")

        assert (up["healthy"], up["status"]) == (True, 200)
        assert (down["healthy"], down["status"]) == (False, 503)
        assert down["error"].endswith("answered 503")


def test_service_health_refuses_localhost_under_the_default_policy(
    listener: int, tmp_path: Path
) -> None:
    with pytest.raises(PolicyRefusedError, match=r"\[network.host\]"):
        run("service_health", tmp_path, service="api", port=listener)


def test_service_health_refuses_a_name_that_resolves_to_loopback(
    listener: int, tmp_path: Path
) -> None:
    # Every name is allowed and nothing denied by glob: the address guard still refuses the
    # loopback address `localhost` resolves to, which no entry names.
    network = NetworkPolicy(allowed_hosts=["*"], denied_hosts=[], ports=[listener])
    with pytest.raises(PolicyRefusedError, match=r"\[network.address\] localhost"):
        run(
            "service_health",
            tmp_path,
            Policy(network=network),
            service="api",
            host="localhost",
            port=listener,
        )


# ping_host


def test_ping_host_times_each_connection(listener: int, tmp_path: Path) -> None:
    output = run(
        "ping_host", tmp_path, loopback_network(listener), host="127.0.0.1", port=listener, count=3
    )

    assert output["success"] is True
    assert output["received"] == 3
    assert len(output["times_ms"]) == 3
    assert all(t is not None and t >= 0 for t in output["times_ms"])
    assert output["output"].count("connected to 127.0.0.1") == 3


def test_ping_host_fails_when_nothing_answers(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(StepRunError, match="answered none of 2"):
        run("ping_host", tmp_path, loopback_network(port), host="127.0.0.1", port=port, count=2)


def test_ping_host_refuses_a_port_or_private_host_the_policy_does_not_allow(
    listener: int, tmp_path: Path
) -> None:
    with pytest.raises(PolicyRefusedError, match=r"\[network.port\]"):
        run("ping_host", tmp_path, loopback_network(listener + 1), host="127.0.0.1", port=listener)
    with pytest.raises(PolicyRefusedError, match=r"\[network.host\]"):
        run("ping_host", tmp_path, host="10.0.0.1")


# websocket_connect


@asynccontextmanager
async def echo_server() -> AsyncIterator[tuple[int, list[str]]]:
    """A WebSocket server on loopback that records and echoes every text message, twice."""
    heard: list[str] = []

    async def echo(connection: ServerConnection) -> None:
        async for message in connection:
            text = message if isinstance(message, str) else message.decode()
            heard.append(text)
            await connection.send(f"echo:{text}")
            await connection.send(f"again:{text}")

    async with serve(echo, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield port, heard


def websocket_echo(tmp_path: Path, path: str = "/", **parameters: Any) -> tuple[Any, list[str]]:
    """A websocket_connect attempt against the echo server: its output, and what it heard."""

    async def scenario() -> tuple[Any, list[str]]:
        async with echo_server() as (port, heard):
            policy = loopback_network(port, schemes=("ws",))
            url = f"ws://127.0.0.1:{port}{path}"
            output = await attempt("websocket_connect", tmp_path, policy, url=url, **parameters)
            return output, heard

    return asyncio.run(scenario())


def test_websocket_sends_and_receives_messages(tmp_path: Path) -> None:
    output, heard = websocket_echo(
        tmp_path, "/feed", message="hello", messages=["world"], receive=3
    )

    assert heard[:2] == ["hello", "world"]
    assert output["received"] == ["echo:hello", "again:hello", "echo:world"]
    assert (output["connected"], output["message_sent"], output["sent"]) == (True, True, 2)


def test_websocket_over_tls_verifies_the_certificate_for_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = write_self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    async def echo(connection: ServerConnection) -> None:
        async for message in connection:
            await connection.send(f"secure:{message!s}")

    async def scenario() -> Any:
        async with serve(echo, "127.0.0.1", 0, ssl=tls) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            policy = loopback_network(port, schemes=("wss",))
            url = f"wss://127.0.0.1:{port}/"
            output = await attempt(
                "websocket_connect", tmp_path, policy, url=url, message="hi", receive=1
            )
            monkeypatch.delenv("SSL_CERT_FILE")
            with pytest.raises(StepRunError, match="CERTIFICATE_VERIFY_FAILED"):
                await attempt("websocket_connect", tmp_path, policy, url=url, message="hi")
            return output

    assert asyncio.run(scenario())["received"] == ["secure:hi"]


def test_websocket_times_out_waiting_for_more_messages(tmp_path: Path) -> None:
    with pytest.raises(StepRunError, match=r"2 of 3 messages within 0\.5 s"):
        websocket_echo(tmp_path, message="one", receive=3, timeout_seconds=0.5)


def test_websocket_refuses_plain_ws_and_loopback_under_default_rules(tmp_path: Path) -> None:
    with pytest.raises(PolicyRefusedError, match=r"\[network.scheme\]"):
        run("websocket_connect", tmp_path, url="ws://example.com/", message="x")
    secure = Policy(network=NetworkPolicy(schemes=["wss"]))
    with pytest.raises(PolicyRefusedError, match=r"\[network.host\]"):
        run("websocket_connect", tmp_path, secure, url="wss://127.0.0.1/", message="x")


def test_websocket_refuses_a_name_resolving_to_loopback(tmp_path: Path) -> None:
    network = NetworkPolicy(schemes=["ws"], allowed_hosts=["*"], denied_hosts=[], ports=[9])
    with pytest.raises(PolicyRefusedError, match=r"\[network.address\] localhost"):
        run("websocket_connect", tmp_path, Policy(network=network), url="ws://localhost:9/")


# ssh_execute

SshScenario = Callable[[int, str], Awaitable[Any]]


class _Server(asyncssh.SSHServer):
    authorized = ""  # an OpenSSH public key line `deploy` may log in with

    def connection_made(self, connection: asyncssh.SSHServerConnection) -> None:
        self.connection = connection

    def begin_auth(self, username: str) -> bool:
        if self.authorized:
            keys = asyncssh.import_authorized_keys(self.authorized)
            self.connection.set_authorized_keys(keys)
        return True

    def public_key_auth_supported(self) -> bool:
        return bool(self.authorized)

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == "deploy" and password == "s3cret"


async def _handle(process: asyncssh.SSHServerProcess[str]) -> None:
    command = process.command or ""
    if command == "fail":
        process.stderr.write("it broke\n")
        process.exit(3)
        return
    process.stdout.write(f"ran: {command}\n")
    process.exit(0)


async def with_ssh_server(scenario: SshScenario) -> Any:
    """Run the scenario with an SSH server on loopback: its port and its known_hosts line."""
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    server = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        server_factory=_Server,
        process_factory=_handle,
    )
    try:
        port = server.sockets[0].getsockname()[1]
        public = host_key.export_public_key("openssh").decode().strip()
        return await scenario(port, f"[127.0.0.1]:{port} {public}")
    finally:
        server.close()
        await server.wait_closed()


def ssh_policy(port: int, known_host: str | None, **options: Any) -> Policy:
    """A policy letting ssh_execute log in to 127.0.0.1 as `deploy`."""
    ssh = SshPolicy(
        hosts=["127.0.0.1"],
        users=["deploy"],
        ports=[port],
        known_hosts=[known_host] if known_host else [],
        **options,
    )
    return Policy(ssh=ssh)


def ssh_login(
    tmp_path: Path,
    policy_of: Callable[[int, str], Policy] = ssh_policy,
    **changes: Any,
) -> SshScenario:
    """An ssh_execute attempt against the test server: `deploy` with its password runs `id`,
    unless `changes` say otherwise (None removes a parameter); `policy_of(port, known_host)`."""

    async def scenario(port: int, known: str) -> Any:
        parameters = {
            **{"host": "127.0.0.1", "port": port, "username": "deploy"},
            **{"password": "s3cret", "command": "id", **changes},
        }
        given = {k: v for k, v in parameters.items() if v is not None}
        return await attempt("ssh_execute", tmp_path, policy_of(port, known), **given)

    return scenario


def test_ssh_runs_a_command_and_returns_its_output(tmp_path: Path) -> None:
    output = asyncio.run(with_ssh_server(ssh_login(tmp_path, command="uptime -p")))

    assert output == {
        "command": "uptime -p",
        "stdout": "ran: uptime -p\n",
        "stderr": "",
        "exit_code": 0,
    }


def test_ssh_logs_in_with_a_private_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    monkeypatch.setattr(_Server, "authorized", client_key.export_public_key("openssh").decode())
    login = ssh_login(
        tmp_path,
        password=None,
        private_key=client_key.export_private_key().decode(),
        command="hostname",
    )

    assert asyncio.run(with_ssh_server(login))["stdout"] == "ran: hostname\n"


_OTHER_HOST_KEY = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh")


def _other_host_key(port: int, known: str) -> Policy:
    return ssh_policy(port, f"[127.0.0.1]:{port} {_OTHER_HOST_KEY.decode().strip()}")


@pytest.mark.parametrize(
    ("changes", "policy_of", "error", "match"),
    [
        (
            {"command": "x" * 100, "max_output_bytes": 50},
            ssh_policy,
            StepRunError,
            "more than 50 bytes to stdout",
        ),
        ({"command": "fail"}, ssh_policy, StepRunError, "exited with status 3: it broke"),
        ({"password": "wrong"}, ssh_policy, StepRunError, "authentication failed"),
        ({}, _other_host_key, PolicyRefusedError, r"\[ssh.known_hosts\]"),
        ({}, lambda port, known: ssh_policy(port, None), PolicyRefusedError, "lists no SSH host"),
    ],
    ids=["output-cap", "exit-status", "wrong-password", "unlisted-host-key", "no-known-hosts"],
)
def test_ssh_fails_the_step_saying_what_went_wrong(
    tmp_path: Path,
    changes: dict[str, Any],
    policy_of: Callable[[int, str], Policy],
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        asyncio.run(with_ssh_server(ssh_login(tmp_path, policy_of, **changes)))


def test_ssh_accepts_unknown_host_keys_only_where_the_policy_says_so(tmp_path: Path) -> None:
    trusting = ssh_login(
        tmp_path, lambda port, known: ssh_policy(port, None, accept_unknown_host_keys=True)
    )

    assert asyncio.run(with_ssh_server(trusting))["stdout"] == "ran: id\n"


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"username": "root"}, "ssh.user"),
        ({"host": "10.1.2.3"}, "ssh.host"),
        ({"port": 2222}, "ssh.port"),
    ],
)
def test_ssh_refuses_what_the_section_does_not_grant(
    changes: dict[str, Any], rule: str, tmp_path: Path
) -> None:
    parameters = {"host": "127.0.0.1", "port": 22, "username": "deploy", "command": "id"}
    policy = ssh_policy(22, "127.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5")
    with pytest.raises(PolicyRefusedError, match=rf"\[{rule}\]"):
        run("ssh_execute", tmp_path, policy, **{**parameters, **changes})


def test_ssh_is_refused_by_the_default_policy(tmp_path: Path) -> None:
    with pytest.raises(PolicyRefusedError, match=r"\[ssh.user\]|\[ssh.host\]"):
        run("ssh_execute", tmp_path, host="127.0.0.1", username="deploy", command="id")


def test_ssh_refuses_a_listed_name_that_resolves_to_loopback(tmp_path: Path) -> None:
    # `localhost` is listed by name: its loopback address is reached only when listed as one.
    ssh = SshPolicy(hosts=["localhost"], users=["deploy"], accept_unknown_host_keys=True)
    with pytest.raises(PolicyRefusedError, match=r"\[ssh.address\] localhost .*ssh.hosts entry"):
        run(
            "ssh_execute",
            tmp_path,
            Policy(ssh=ssh),
            host="localhost",
            username="deploy",
            command="id",
        )


# monitor_resources


def test_monitor_resources_reports_machine_totals_and_the_workspace_disk(tmp_path: Path) -> None:
    output = run("monitor_resources", tmp_path, sample_seconds=0.05)

    memory, disk = output["memory"], output["workspace_disk"]
    assert 0 <= output["cpu_usage_percent"] <= 100
    assert output["cpu_count"] >= 1 and len(output["load_average"]) == 3
    assert 0 < memory["used_bytes"] <= memory["total_bytes"]
    assert memory["used_bytes"] + memory["free_bytes"] == memory["total_bytes"]
    assert 0 < disk["free_bytes"] <= disk["total_bytes"]
    # Totals only: nothing names a process, a user or a path outside the workspace.
    assert set(output) == {
        *("cpu_usage_percent", "cpu_count", "load_average", "memory", "workspace_disk"),
    }


def test_monitor_resources_tells_nothing_of_other_processes_or_the_host(tmp_path: Path) -> None:
    # Another tenant's program on this machine, with an argument and a folder of its own.
    other = tmp_path / "other-tenant"
    other.mkdir()
    token = f"rc-other-tenant-{uuid.uuid4().hex}"
    program = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; time.sleep(60)", token], cwd=other
    )
    try:
        workspace = tmp_path / "ws"
        workspace.mkdir()
        # Hostile parameters: RustChain's step had none; ours asks only how long to sample.
        output = run(
            "monitor_resources", workspace, sample_seconds=0.05, pid=program.pid, path="/proc"
        )
    finally:
        program.kill()
        program.wait()

    shown = json.dumps(output)
    for secret in (token, str(other), str(tmp_path), os.environ.get("USER") or "root"):
        assert secret not in shown
    # Numbers only (a pid would hide among them): every value is a figure, none a text.
    assert not any(isinstance(v, str) for v in _leaves(output))
    assert set(output) == {
        *("cpu_usage_percent", "cpu_count", "load_average", "memory", "workspace_disk"),
    }


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


@pytest.mark.parametrize("seconds", [0, -1, 11, 1e9, "0.1", True])
def test_monitor_resources_refuses_a_sample_it_cannot_take(tmp_path: Path, seconds: Any) -> None:
    with pytest.raises(StepRunError, match="cannot run with these parameters: 'sample_seconds'"):
        run("monitor_resources", tmp_path, sample_seconds=seconds)


# Text no protocol can carry ends in a step error, not a Python one.


def test_websocket_text_that_is_no_utf8_fails_the_step(tmp_path: Path) -> None:
    with pytest.raises(StepRunError, match=r"WebSocket .* failed"):
        websocket_echo(tmp_path, message="\ud800")


def test_ssh_command_that_is_no_utf8_fails_the_step(tmp_path: Path) -> None:
    with pytest.raises(StepRunError, match=r"ssh 127\.0\.0\.1"):
        asyncio.run(with_ssh_server(ssh_login(tmp_path, password="s3cret\udc80")))
