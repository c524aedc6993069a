"""The OS sandbox holds on its own: each attack runs with the verifier bypassed (no policy, or a
permissive one), under each mechanism forced, and fails to reach outside its workspace."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rustchain.domain.policy.model import CommandLimits, CommandPolicy, NetworkPolicy, Policy
from rustchain.platform.sandbox.bubblewrap import BubblewrapSandbox
from rustchain.platform.sandbox.selection import choose_sandbox
from rustchain.steps import default_registry
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.sandboxing import SANDBOX_SETTING
from tests.conditions import wait_until_sync
from tests.integration.sandbox_helpers import MECHANISMS, sandbox, sandboxed_context

REGISTRY = default_registry(include_plugins=False)
SECRET = "the-deployment-secret-4f2a"


def _permissive(**commands: Any) -> Policy:
    """A policy that lets any program and argument through: only the sandbox stands."""
    return Policy(
        commands=CommandPolicy(
            allowed_programs=["*"],
            unmodelled_programs=["*"],
            denied_arguments=[],
            allow_shell=True,
            **commands,
        )
    )


def _run(context: StepContext, **parameters: Any) -> Any:
    definition = REGISTRY.types["command"]
    params = definition.parameters.model_validate(parameters)
    return asyncio.run(definition.run(params, context))  # type: ignore[attr-defined]


def _outcome(context: StepContext, **parameters: Any) -> str:
    """The step's output, or its error: whatever a mission would see."""
    try:
        return str(_run(context, **parameters))
    except StepRunError as error:
        return str(error)


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if marker in cmdline and state != "Z":
                found.append(int(entry.name))
    return found


def _wait_until_gone(marker: str, within: float = 5.0) -> list[int]:
    """The processes still running with the marker: none once they are gone (the test fails,
    naming the marker, if they outlive `within` seconds)."""
    wait_until_sync(lambda: not _processes_with(marker), within, f"no process has {marker!r}")
    return _processes_with(marker)


@pytest.fixture(params=MECHANISMS)
def mechanism(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """A home with a key, tenant alpha's workspace, and tenant beta's with a secret."""
    home = tmp_path / "home"
    alpha = home / "workspaces" / "alpha" / "m1"
    beta = home / "workspaces" / "beta" / "m2"
    alpha.mkdir(parents=True)
    beta.mkdir(parents=True)
    (home / "jwt.key").write_text(SECRET)
    (beta / "notes.txt").write_text(SECRET)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text(SECRET)
    yield {"home": home, "workspace": alpha, "beta": beta, "outside": tmp_path / "outside"}


def test_background_and_setsid_children_end_with_the_step(
    mechanism: str, deployment: dict[str, Path]
) -> None:
    marker = f"30{uuid.uuid4().int % 10**6}"
    script = f"sleep {marker} & setsid sleep {marker} & (sleep {marker} &); echo started"
    context = sandboxed_context(deployment["workspace"], mechanism=mechanism)

    assert _run(context, command="sh", args=["-c", script]) == "started"

    assert _wait_until_gone(marker) == []


def test_a_timed_out_step_ends_every_process_it_started(
    mechanism: str, deployment: dict[str, Path]
) -> None:
    marker = f"31{uuid.uuid4().int % 10**6}"
    context = sandboxed_context(deployment["workspace"], timeout=1, mechanism=mechanism)

    with pytest.raises(StepRunError, match=r"did not finish within 1 s"):
        _run(context, command="sh", args=["-c", f"setsid sleep {marker} & sleep {marker}"])

    assert _wait_until_gone(marker) == []


def test_the_home_and_another_tenants_workspace_are_out_of_reach(
    mechanism: str, deployment: dict[str, Path]
) -> None:
    context = sandboxed_context(deployment["workspace"], mechanism=mechanism)
    home, beta = deployment["home"], deployment["beta"]
    script = (
        f"cat {home}/jwt.key {beta}/notes.txt; ls {home} {beta}; "
        "cd ../.. && ls -R . && cat beta/m2/notes.txt; ls /; echo done"
    )

    seen = _outcome(context, command="sh", args=["-c", script + " 2>&1"])

    assert "done" in seen
    assert SECRET not in seen
    assert "jwt.key" not in seen
    assert "notes.txt" not in seen.replace(f"{beta}/notes.txt", "")


def test_find_exec_cannot_reach_outside(mechanism: str, deployment: dict[str, Path]) -> None:
    context = sandboxed_context(deployment["workspace"], mechanism=mechanism)
    secret = deployment["outside"] / "secret"
    escape = f"cat {secret}; echo written > {deployment['outside']}/planted; id"

    seen = _outcome(
        context, command="find", args=[".", "-maxdepth", "0", "-exec", "sh", "-c", escape, ";"]
    )

    assert SECRET not in seen
    assert not (deployment["outside"] / "planted").exists()


def test_sort_compress_program_cannot_reach_outside(
    mechanism: str, deployment: dict[str, Path]
) -> None:
    workspace, outside = deployment["workspace"], deployment["outside"]
    # sort spills to temporary files through the "compressor", which reads the lines as a script.
    line = f"cat {outside}/secret >> {workspace}/leak 2>&1; echo x > {outside}/planted\n"
    (workspace / "in.txt").write_text(line * 2000)
    context = sandboxed_context(workspace, mechanism=mechanism)

    seen = _outcome(context, command="sort", args=["-S", "1K", "--compress-program=sh", "in.txt"])

    assert SECRET not in seen
    assert SECRET not in ((workspace / "leak").read_text() if (workspace / "leak").exists() else "")
    assert not (outside / "planted").exists()


def test_a_command_without_a_grant_cannot_connect_to_a_loopback_listener(
    mechanism: str, deployment: dict[str, Path]
) -> None:
    context = sandboxed_context(deployment["workspace"], mechanism=mechanism)
    with (
        socket.socket() as listener,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagrams,
    ):
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        datagrams.bind(("127.0.0.1", 0))
        datagrams.setblocking(False)
        tcp, udp = listener.getsockname()[1], datagrams.getsockname()[1]
        script = (
            "import socket\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {tcp}), timeout=5)\n"
            "    print('connected')\n"
            "except OSError as error:\n"
            "    print('refused', error)\n"
            "try:\n"
            f"    socket.socket(type=socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', {udp}))\n"
            "except OSError as error:\n"
            "    print('refused', error)\n"
        )

        seen = _outcome(context, command="python3", args=["-c", script])

        assert "connected" not in seen
        with pytest.raises(BlockingIOError):
            listener.accept()
        with pytest.raises(BlockingIOError):
            datagrams.recv(16)


def test_the_environment_is_built_from_an_allowlist(
    mechanism: str, deployment: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUSTCHAIN_TEST_SECRET", "hunter2")
    monkeypatch.setenv("LD_PRELOAD", "/nonexistent.so")
    context = sandboxed_context(deployment["workspace"], mechanism=mechanism)

    names = {
        line.split("=", 1)[0]: line.split("=", 1)[1]
        for line in _run(context, command="env", env={"APP_MODE": "x"}).splitlines()
    }

    assert "RUSTCHAIN_TEST_SECRET" not in names
    assert "LD_PRELOAD" not in names
    assert names["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert names["HOME"] == str(deployment["workspace"].resolve())
    assert names["APP_MODE"] == "x"
    assert set(names) <= {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TZ", "APP_MODE", "PWD"}


def test_the_policys_limits_apply(mechanism: str, deployment: dict[str, Path]) -> None:
    limits = CommandLimits(cpu_seconds=7, file_size_mb=1, open_files=40, memory_mb=512)
    policy = _permissive(limits=limits)
    context = sandboxed_context(deployment["workspace"], mechanism=mechanism, policy=policy)

    reported = _run(context, command="sh", args=["-c", "ulimit -t; ulimit -n; ulimit -v"])
    with pytest.raises(StepRunError):
        _run(context, command="sh", args=["-c", "head -c 2000000 /dev/zero > big"])

    assert reported.split() == ["7", "40", str(512 * 1024)]
    assert (deployment["workspace"] / "big").stat().st_size <= 1024 * 1024


def test_the_private_temporary_folder_is_writable_and_not_shared(
    mechanism: str, deployment: dict[str, Path]
) -> None:
    context = sandboxed_context(deployment["workspace"], mechanism=mechanism)
    script = 'echo t > "$TMPDIR/x" && cat "$TMPDIR/x" && ls -A "$TMPDIR"'

    first = _run(context, command="sh", args=["-c", script])
    second = _run(context, command="sh", args=["-c", 'ls -A "$TMPDIR"'])

    assert first.splitlines()[0] == "t"
    assert "x" in first.splitlines()[1:]
    assert "x" not in second.splitlines()


def test_without_a_sandbox_command_steps_are_refused_unless_the_policy_allows_it(
    tmp_path: Path,
) -> None:
    none = choose_sandbox({SANDBOX_SETTING: "none"})
    refused = StepContext("acme", "m1", "s1", tmp_path, 10, sandbox=none)
    allowed = StepContext(
        "acme", "m1", "s1", tmp_path, 10, sandbox=none, policy=_permissive(sandbox="optional")
    )

    with pytest.raises(StepRunError, match=r"RUSTCHAIN_SANDBOX=none.*sandbox: optional"):
        _run(refused, command="echo", args=["hi"])
    with pytest.raises(StepRunError, match=r"no OS sandbox"):
        _run(StepContext("acme", "m1", "s1", tmp_path, 10), command="echo", args=["hi"])
    assert _run(allowed, command="echo", args=["hi"]) == "hi"


def test_a_network_grant_is_refused_where_it_cannot_be_enforced(
    mechanism: str, deployment: dict[str, Path]
) -> None:
    policy = _permissive(network_hosts=["example.com"])
    chosen = sandbox(mechanism)
    if isinstance(chosen, BubblewrapSandbox):
        chosen = BubblewrapSandbox(chosen.binary, egress=None)  # an executor without the proxy
    context = StepContext(
        "acme", "m1", "s1", deployment["workspace"], 10, policy=policy, sandbox=chosen
    )

    with pytest.raises(StepRunError, match=r"network_hosts"):
        _run(context, command="true")


@contextlib.asynccontextmanager
async def _stand_in_proxy(
    socket_path: Path, hosts: Sequence[str], ports: Sequence[int], denied: Sequence[str]
) -> AsyncIterator[Any]:
    """A minimal CONNECT proxy (the real one is platform.egress_proxy): granted names lead to
    the test's loopback server, others get 403."""
    granted.append((list(hosts), list(ports)))

    async def tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        _, authority, _ = head.split(" ", 2)
        host, port = authority.rsplit(":", 1)
        if host not in hosts or int(port) not in ports:
            writer.write(b"HTTP/1.1 403 Forbidden\r\n\r\n")
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    server = await asyncio.start_unix_server(tunnel, path=str(socket_path))
    try:
        yield SimpleNamespace(socket_path=socket_path)
    finally:
        server.close()


granted: list[tuple[list[str], list[int]]] = []


def _proxy_script(port: int, granted: bytes, other: bytes) -> str:
    """A program that asks the proxy (HTTPS_PROXY) for a tunnel to each host on the port, prints
    each answer's status line, sends a greeting through the granted tunnel, then tries the port
    directly."""
    return (
        "import os, socket\n"
        "proxy = os.environ['HTTPS_PROXY'].rsplit(':', 1)\n"
        "def ask(host):\n"
        "    s = socket.create_connection((proxy[0][7:], int(proxy[1])), timeout=10)\n"
        f"    s.sendall(b'CONNECT ' + host + b':{port} HTTP/1.1\\r\\n\\r\\n')\n"
        "    print(s.recv(200).split(b'\\r\\n')[0].decode()[:12])\n"
        "    return s\n"
        f"tunnel = ask({granted!r})\n"
        "tunnel.sendall(b'hello through the proxy')\n"
        f"ask({other!r})\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=5)\n"
        "    print('direct: connected')\n"
        "except OSError:\n"
        "    print('direct: refused')\n"
    )


def _run_beside_a_listener(
    context: StepContext, listener: socket.socket, script: str
) -> tuple[str, bytes]:
    """Run the script as a step while accepting one connection on the listener; the step's output
    and what the connection received."""
    listener.settimeout(20)

    async def step_and_accept() -> tuple[str, bytes]:
        task = asyncio.ensure_future(_run_async(context, command="python3", args=["-c", script]))
        connection, _ = await asyncio.to_thread(listener.accept)
        with connection:
            received = await asyncio.to_thread(connection.recv, 100)
        return await task, received

    return asyncio.run(step_and_accept())


def test_a_granted_host_is_reached_only_through_the_egress_proxy(tmp_path: Path) -> None:
    chosen = sandbox("bubblewrap")
    assert isinstance(chosen, BubblewrapSandbox)
    confined = BubblewrapSandbox(chosen.binary, egress=_stand_in_proxy)
    with socket.socket() as echo:
        echo.bind(("127.0.0.1", 0))
        echo.listen()
        port = echo.getsockname()[1]
        policy = Policy(
            commands=CommandPolicy(
                allowed_programs=["*"],
                unmodelled_programs=["*"],
                denied_arguments=[],
                network_hosts=["granted.test"],
            ),
            network=NetworkPolicy(ports=[port]),
        )
        context = StepContext("acme", "m1", "s1", tmp_path, 20, policy=policy, sandbox=confined)
        script = _proxy_script(port, b"granted.test", b"other.test")
        output, received = _run_beside_a_listener(context, echo, script)

    assert received == b"hello through the proxy"
    assert output.splitlines() == ["HTTP/1.1 200", "HTTP/1.1 403", "direct: refused"]
    assert granted[-1] == (["granted.test"], [port])


async def _run_async(context: StepContext, **parameters: Any) -> Any:
    definition = REGISTRY.types["command"]
    params = definition.parameters.model_validate(parameters)
    return await definition.run(params, context)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        ({"command": "echo", "args": ["a\0b"]}, r"args\[0\] contains a NUL byte"),
        ({"command": "echo\0x"}, r"command contains a NUL byte"),
        ({"command": "env", "env": {"APP_A": "b\0c"}}, r"env\.APP_A contains a NUL byte"),
        ({"command": "env", "env": {"APP_A=B": "c"}}, r"env name 'APP_A=B' is not a valid"),
        ({"command": "echo", "args": ["x" * 200_000]}, r"E2BIG.*shorten args"),
        ({"command": "echo", "args": ["x"] * 100_000}, r"shorten args"),
    ],
)
def test_what_the_kernel_cannot_take_fails_naming_the_parameter(
    tmp_path: Path, parameters: dict[str, Any], named: str
) -> None:
    context = sandboxed_context(tmp_path)

    with pytest.raises(StepRunError, match=named):
        _run(context, **parameters)


def test_the_executor_environment_is_not_visible_through_proc(
    mechanism: str, deployment: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUSTCHAIN_TEST_SECRET", SECRET)
    context = sandboxed_context(deployment["workspace"], mechanism=mechanism)
    script = f"cat /proc/{os.getpid()}/environ /proc/1/environ 2>&1; echo done"

    seen = _outcome(context, command="sh", args=["-c", script])

    assert "done" in seen
    assert SECRET not in seen


def test_a_grant_through_the_deployments_egress_proxy_reaches_only_its_hosts(
    tmp_path: Path,
) -> None:
    # The real proxy (platform.egress_proxy) judges every resolved address; loopback is the only
    # listener a test can start, so this policy grants it by address and denies nothing else.
    confined = sandbox("bubblewrap")
    with socket.socket() as echo:
        echo.bind(("127.0.0.1", 0))
        echo.listen()
        port = echo.getsockname()[1]
        policy = Policy(
            commands=CommandPolicy(
                allowed_programs=["python3"],
                unmodelled_programs=["python3"],
                denied_arguments=[],
                network_hosts=["127.0.0.1"],
            ),
            network=NetworkPolicy(ports=[port], denied_hosts=[]),
        )
        context = StepContext("acme", "m1", "s1", tmp_path, 20, policy=policy, sandbox=confined)
        script = _proxy_script(port, b"127.0.0.1", b"localhost")
        output, received = _run_beside_a_listener(context, echo, script)

    assert received == b"hello through the proxy"
    assert output.splitlines() == ["HTTP/1.1 200", "HTTP/1.1 403", "direct: refused"]
