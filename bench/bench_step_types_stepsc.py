"""Per-step cost of the network, login and host step types (issue 14) on a trivial input, beside
the `noop` step: one attempt each, through the registry's runner, against servers on loopback
that a bench policy allows (plain FTP from pyftpdlib, FTPS and SSH from in-process servers)."""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncssh
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
from tests.integration.ftps_server import ftps_server, write_self_signed
from websockets.asyncio.server import ServerConnection, serve

from rustchain.domain.policy.model import NetworkPolicy, Policy
from rustchain.domain.policy.remote import FtpPolicy, SshPolicy
from rustchain.steps import default_registry
from rustchain.steps.support.runtime import StepContext, parameters_of

REGISTRY = default_registry(include_plugins=False)
ROUNDS = {"noop": 2000, "monitor_resources": 20}
DEFAULT_ROUNDS = 60


async def _median_ms(name: str, call: Callable[[], Awaitable[Any]]) -> float:
    rounds = ROUNDS.get(name, DEFAULT_ROUNDS)
    for _ in range(min(5, rounds)):
        await call()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e3


def _step(step_type: str, workspace: Path, policy: Policy, **parameters: Any) -> Callable[[], Any]:
    definition = REGISTRY.types[step_type]
    params = parameters_of(definition.parameters, parameters)
    context = StepContext("bench", "m", "s", workspace, 30, policy=policy)
    run = definition.run  # type: ignore[attr-defined]
    return lambda: run(params, context)


class _SshServer(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return password == "pw"


async def _ssh_exit(process: asyncssh.SSHServerProcess[str]) -> None:
    process.stdout.write("ok\n")
    process.exit(0)


async def _echo(connection: ServerConnection) -> None:
    async for message in connection:
        await connection.send(message)


def _plain_ftp(root: Path) -> tuple[int, Callable[[], None]]:
    # pyftpdlib's server polls (50 ms at most) between calls: it adds to the plain FTP figure.
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    authorizer = DummyAuthorizer()
    authorizer.add_user("bench", "pw", str(root), perm="elradfmw")
    server = FTPServer(("127.0.0.1", 0), type("H", (FTPHandler,), {"authorizer": authorizer}))
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        server.close_all()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()

    def close() -> None:
        stop.set()
        thread.join(timeout=10)

    return int(server.address[1]), close


async def _figures(folder: Path) -> list[tuple[str, float]]:
    workspace = folder / "ws"
    workspace.mkdir()
    (workspace / "small.txt").write_bytes(b"hello\n")
    served = folder / "served"
    served.mkdir()
    figures = [("noop", await _median_ms("noop", _step("noop", workspace, Policy())))]

    tcp = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    ws = await serve(_echo, "127.0.0.1", 0)
    key = asyncssh.generate_private_key("ssh-ed25519")
    ssh = await asyncssh.listen(
        "127.0.0.1", 0, server_host_keys=[key], server_factory=_SshServer, process_factory=_ssh_exit
    )
    tcp_port = tcp.sockets[0].getsockname()[1]
    ws_port = next(iter(ws.sockets)).getsockname()[1]
    ssh_port = ssh.sockets[0].getsockname()[1]
    ftp_port, close_ftp = _plain_ftp(served)
    cert, key_file = write_self_signed(folder)
    os.environ["SSL_CERT_FILE"] = str(cert)
    known = f"[127.0.0.1]:{ssh_port} {key.export_public_key('openssh').decode().strip()}"
    try:
        async with ftps_server(cert, key_file, {"bench": "pw"}) as ftps:
            policy = Policy(
                network=NetworkPolicy(
                    schemes=["ws"],
                    allowed_hosts=["127.0.0.1"],
                    denied_hosts=[],
                    ports=[tcp_port, ws_port],
                ),
                ssh=SshPolicy(
                    hosts=["127.0.0.1"], users=["bench"], ports=[ssh_port], known_hosts=[known]
                ),
                ftp=FtpPolicy(
                    hosts=["127.0.0.1"],
                    users=["bench"],
                    ports=[ftp_port, ftps.port],
                    allow_plain=True,
                ),
            )
            login = {"host": "127.0.0.1", "username": "bench", "password": "pw"}
            upload = {"local_file": "small.txt", "remote_file": "small.txt", **login}
            steps = {
                "service_health (TCP)": _step(
                    "service_health",
                    workspace,
                    policy,
                    service="x",
                    host="127.0.0.1",
                    port=tcp_port,
                ),
                "ping_host (count 1)": _step(
                    "ping_host", workspace, policy, host="127.0.0.1", port=tcp_port, count=1
                ),
                "websocket_connect (send 1, receive 1)": _step(
                    "websocket_connect",
                    workspace,
                    policy,
                    url=f"ws://127.0.0.1:{ws_port}/",
                    message="hi",
                    receive=1,
                ),
                "ssh_execute (password, ed25519 host key)": _step(
                    "ssh_execute", workspace, policy, port=ssh_port, command="true", **login
                ),
                "ftp_upload (plain)": _step(
                    "ftp_upload", workspace, policy, port=ftp_port, tls=False, **upload
                ),
                "ftp_upload (TLS)": _step(
                    "ftp_upload", workspace, policy, port=ftps.port, **upload
                ),
                "monitor_resources (sample 0.01 s)": _step(
                    "monitor_resources", workspace, policy, sample_seconds=0.01
                ),
            }
            for name, call in steps.items():
                figures.append((name, await _median_ms(name.split()[0], call)))
    finally:
        close_ftp()
        ssh.close()
        ws.close()
        tcp.close()
    return figures


def main() -> None:
    """Print the median ms per step of each type beside `noop`."""
    with tempfile.TemporaryDirectory(prefix="bench-stepsc-") as folder:
        figures = asyncio.run(_figures(Path(folder)))
    baseline = figures[0][1]
    for name, ms in figures:
        print(f"{name}: {ms:.4f} ms/step (noop: {baseline:.4f} ms/step)")


if __name__ == "__main__":
    main()
