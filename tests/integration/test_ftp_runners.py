"""ftp_upload and ftp_download against real servers on loopback: pyftpdlib for plain FTP (which
the policy must allow), a stdlib-ssl FTPS server with a generated certificate for FTP over TLS;
and their runtime refusals with the verifier bypassed."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

from rustchain.domain.policy.model import Policy
from rustchain.domain.policy.remote import FtpPolicy
from rustchain.steps.support.runtime import PolicyRefusedError, StepRunError
from tests.integration.ftps_server import ftps_server, write_self_signed
from tests.integration.step_run_helpers import attempt


def ftp_policy(port: int, allow_plain: bool = False) -> Policy:
    """A policy letting ftp steps log in to 127.0.0.1 as `uploader`."""
    ftp = FtpPolicy(hosts=["127.0.0.1"], users=["uploader"], ports=[port], allow_plain=allow_plain)
    return Policy(ftp=ftp)


@dataclass(frozen=True)
class PlainServer:
    """A pyftpdlib server: its port and the folder it serves."""

    port: int
    root: Path


@pytest.fixture
def plain_server(tmp_path: Path) -> Iterator[PlainServer]:
    root = tmp_path / "served"
    root.mkdir()
    (root / "report.txt").write_bytes(b"quarterly figures\n")
    authorizer = DummyAuthorizer()
    authorizer.add_user("uploader", "pw", str(root), perm="elradfmw")
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer})
    server = FTPServer(("127.0.0.1", 0), handler)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        server.close_all()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield PlainServer(server.address[1], root)
    finally:
        stop.set()
        thread.join(timeout=10)


def test_plain_ftp_uploads_and_downloads_when_the_policy_allows_it(
    plain_server: PlainServer, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "out.csv").write_bytes(b"a,b\n1,2\n")
    policy = ftp_policy(plain_server.port, allow_plain=True)
    common = {"host": "127.0.0.1", "port": plain_server.port, "username": "uploader"}
    common |= {"password": "pw", "tls": False}

    sent = asyncio.run(
        attempt(
            "ftp_upload", workspace, policy, local_file="out.csv", remote_file="up.csv", **common
        )
    )
    got = asyncio.run(
        attempt(
            "ftp_download",
            workspace,
            policy,
            local_file="in/report.txt",
            remote_file="report.txt",
            **common,
        )
    )

    assert (plain_server.root / "up.csv").read_bytes() == b"a,b\n1,2\n"
    assert (workspace / "in" / "report.txt").read_bytes() == b"quarterly figures\n"
    assert (sent["bytes"], got["bytes"], sent["tls"]) == (8, 18, False)


def test_plain_ftp_is_refused_unless_the_policy_allows_it(
    plain_server: PlainServer, tmp_path: Path
) -> None:
    (tmp_path / "out.csv").write_text("x")
    with pytest.raises(PolicyRefusedError, match=r"\[ftp.plain\]"):
        asyncio.run(
            attempt(
                "ftp_upload",
                tmp_path,
                ftp_policy(plain_server.port),
                host="127.0.0.1",
                port=plain_server.port,
                username="uploader",
                password="pw",
                tls=False,
                local_file="out.csv",
                remote_file="up.csv",
            )
        )


def test_a_missing_remote_file_fails_the_download(
    plain_server: PlainServer, tmp_path: Path
) -> None:
    with pytest.raises(StepRunError, match=r"ftp 127\.0\.0\.1 refused: 550"):
        asyncio.run(
            attempt(
                "ftp_download",
                tmp_path,
                ftp_policy(plain_server.port, allow_plain=True),
                host="127.0.0.1",
                port=plain_server.port,
                username="uploader",
                password="pw",
                tls=False,
                local_file="x.txt",
                remote_file="missing.txt",
            )
        )
    assert not (tmp_path / "x.txt").exists()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return write_self_signed(tmp_path)


def test_ftps_round_trip_over_tls(
    certificate: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    (tmp_path / "notes.md").write_bytes(b"# secret plans\n")

    async def scenario() -> tuple[Any, Any, dict[str, bytes], list[str]]:
        async with ftps_server(*certificate, {"uploader": "pw"}) as server:
            common = {"host": "127.0.0.1", "port": server.port, "username": "uploader"}
            common["password"] = "pw"
            policy = ftp_policy(server.port)
            sent = await attempt(
                "ftp_upload", tmp_path, policy, local_file="notes.md", remote_file="n.md", **common
            )
            got = await attempt(
                "ftp_download", tmp_path, policy, local_file="back.md", remote_file="n.md", **common
            )
            return sent, got, server.files, server.commands

    sent, got, files, commands = asyncio.run(scenario())

    assert files == {"n.md": b"# secret plans\n"}
    assert (tmp_path / "back.md").read_bytes() == b"# secret plans\n"
    assert sent["tls"] is True and got["bytes"] == 15
    # TLS before the password, and private (encrypted) data connections.
    assert commands.index("AUTH") < commands.index("PASS")
    assert "PROT" in commands


def test_ftps_refuses_a_certificate_nobody_trusts(
    certificate: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    (tmp_path / "notes.md").write_bytes(b"x")

    async def scenario() -> list[str]:
        async with ftps_server(*certificate, {"uploader": "pw"}) as server:
            with pytest.raises(StepRunError, match="certificate is not trusted"):
                await attempt(
                    "ftp_upload",
                    tmp_path,
                    ftp_policy(server.port),
                    host="127.0.0.1",
                    port=server.port,
                    username="uploader",
                    password="pw",
                    local_file="notes.md",
                    remote_file="n.md",
                )
            return server.commands

    # The password was never sent: the handshake failed first.
    assert "PASS" not in asyncio.run(scenario())


@pytest.mark.parametrize("step_type", ["ftp_upload", "ftp_download"])
def test_ftp_is_refused_by_the_default_policy(step_type: str, tmp_path: Path) -> None:
    with pytest.raises(PolicyRefusedError, match=r"\[ftp.user\]|\[ftp.host\]"):
        asyncio.run(attempt(step_type, tmp_path, host="127.0.0.1", local_file="a", remote_file="b"))


def test_ftp_download_may_not_write_outside_the_workspace(tmp_path: Path) -> None:
    with pytest.raises(PolicyRefusedError, match=r"\[filesystem"):
        asyncio.run(
            attempt(
                "ftp_download",
                tmp_path,
                ftp_policy(21),
                host="127.0.0.1",
                username="uploader",
                local_file="../escape.txt",
                remote_file="b",
            )
        )


def test_ftp_upload_does_not_follow_a_link_out_of_the_workspace(
    plain_server: PlainServer, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    outside = tmp_path / "private.key"
    outside.write_text("not yours")
    os.symlink(outside, workspace / "innocent.txt")
    with pytest.raises(StepRunError, match="local_file"):
        asyncio.run(
            attempt(
                "ftp_upload",
                workspace,
                ftp_policy(plain_server.port, allow_plain=True),
                host="127.0.0.1",
                port=plain_server.port,
                username="uploader",
                password="pw",
                tls=False,
                local_file="innocent.txt",
                remote_file="stolen.txt",
            )
        )
    assert not (plain_server.root / "stolen.txt").exists()
