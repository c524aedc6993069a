"""`rustchain up` on a home of an earlier version (the shared HS256 key, a world-readable store):
it says what it changes, signs with a new Ed25519 key, refuses the old tokens, keeps its secrets
0600 and gives each service only what it may hold."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import jwt
import pytest

from rustchain.domain.access.credentials import Claims, Role
from rustchain.generated.rustchain.memory.v1 import memory_pb2, memory_pb2_grpc
from rustchain.platform.credentials.signing_keys import (
    CHECKPOINT_KEYS,
    TOKEN_KEYS,
    VERDICT_KEYS,
    load_public_key,
)
from rustchain.platform.credentials.tokens import verify
from rustchain.platform.deployment.endpoints import endpoints_path, read_endpoints
from tests.conditions import wait_until_sync

UP_TIMEOUT_SECONDS = 60.0
OLD_KEY = "the-shared-key-of-an-earlier-version-" + "k" * 20


@dataclass
class Upgraded:
    """A deployment started on an old home, and what it printed while starting."""

    home: Path
    process: subprocess.Popen[bytes]
    log: Path
    old_admin: str

    def said(self) -> str:
        return self.log.read_text()


def _old_home(home: Path) -> str:
    """A home as an earlier version left it; returns its HS256 admin token."""
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    (home / "jwt.key").write_text(OLD_KEY)
    admin = jwt.encode({"sub": "admin", "role": "admin"}, OLD_KEY, algorithm="HS256")
    (home / "admin.token").write_text(admin)
    (home / "memory.sqlite3").touch(mode=0o644)
    (home / "memory.sqlite3").chmod(0o644)
    return admin


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upgraded]:
    tmp_path = tmp_path_factory.mktemp("upgraded")
    home = tmp_path / "home"
    old_admin = _old_home(home)
    environ = {**os.environ, "RUSTCHAIN_HOME": str(home)}
    for name in ("RUSTCHAIN_ENDPOINT", "NATS_URL", "RUSTCHAIN_TOKEN"):
        environ.pop(name, None)
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rustchain", "up"], env=environ, stdout=log, stderr=log
        )
        try:
            wait_until_sync((home / "endpoints.json").is_file, UP_TIMEOUT_SECONDS, "endpoints")
            yield Upgraded(home, process, log_path, old_admin)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(UP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {name.decode(): value.decode(errors="replace") for name, value in pairs}


def _children(pid: int) -> dict[str, int]:
    found = subprocess.run(
        ["pgrep", "-a", "-P", str(pid)], capture_output=True, text=True, check=False
    )
    children: dict[str, int] = {}
    for line in found.stdout.splitlines():
        child, _, command = line.partition(" ")
        for name in ("planner", "verifier", "executor", "memory", "trainer"):
            if f"serve {name}" in command:
                children[name] = int(child)
        if "events auth-callout" in command:
            children["nats-auth"] = int(child)
        if "events relay" in command:
            children[f"relay-{command.rpartition(' ')[2]}"] = int(child)
    return children


def test_an_old_home_is_upgraded_and_says_so(upgraded: Upgraded) -> None:
    said = upgraded.said()
    assert "removed" in said and "jwt.key" in said
    assert "made the token-signing key pair" in said
    assert "wrote a new" in said and "admin.token" in said
    assert "memory.sqlite3 was open to other users" in said
    assert not (upgraded.home / "jwt.key").exists()
    public = load_public_key(upgraded.home, TOKEN_KEYS)
    assert public is not None
    claims = verify(public, (upgraded.home / "admin.token").read_text())
    assert claims.role is Role.ADMIN and claims.exp is not None


def test_an_old_token_is_refused_with_a_reissue_message(upgraded: Upgraded) -> None:
    memory = read_endpoints(endpoints_path(upgraded.home)).services["memory"]
    with grpc.insecure_channel(memory) as channel:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.List(
                memory_pb2.ListRequest(collection="c"),
                metadata=(("authorization", f"Bearer {upgraded.old_admin}"),),
                timeout=10,
            )
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert "tokens must be reissued" in refused.value.details()  # type: ignore[attr-defined]


def test_keys_tokens_and_stores_are_private(upgraded: Upgraded) -> None:
    home = upgraded.home
    assert home.stat().st_mode & 0o777 == 0o700
    assert (home / "keys").stat().st_mode & 0o777 == 0o700
    private = [
        *(home / "keys").iterdir(),
        home / "admin.token",
        home / "nats-auth.json",
        *home.glob("*.sqlite*"),
    ]
    assert len(list(home.glob("*-events.sqlite"))) >= 2, "the services' stores were made"
    for path in private:
        assert path.stat().st_mode & 0o777 == 0o600, f"{path.name} is not 0600"


def test_each_service_holds_its_own_token_and_only_the_verifier_and_relays_a_private_key(
    upgraded: Upgraded,
) -> None:
    children = _children(upgraded.process.pid)
    assert {"verifier", "executor", "planner", "memory", "trainer", "nats-auth"} <= set(children)
    assert {"relay-verifier", "relay-executor"} <= set(children)
    public = load_public_key(upgraded.home, TOKEN_KEYS)
    assert public is not None
    admin_file = (upgraded.home / "admin.token").read_text()
    subjects = set()
    for name, pid in children.items():
        environ = _environ_of(pid)
        holds = {variable for variable in environ if "SIGNING_KEY" in variable}
        if name == "verifier":
            assert holds == {VERDICT_KEYS.private_variable}
        elif name.startswith("relay-"):
            assert holds == {CHECKPOINT_KEYS.private_variable}, "a relay signs checkpoints"
        else:
            assert holds == set(), f"{name} holds {holds}"
        if name == "nats-auth":
            assert "RUSTCHAIN_TOKEN" not in environ
            continue
        token = environ["RUSTCHAIN_TOKEN"]
        assert token != admin_file, f"{name} was handed the CLI's admin token"
        claims = verify(public, token)
        assert claims.exp is not None
        subjects.add(claims.sub)
    assert "service:executor" in subjects and "service:verifier" in subjects


def test_a_token_create_with_the_home_signs_what_the_deployment_accepts(
    upgraded: Upgraded,
) -> None:
    command = ["token", "create", "--role", "tenant", "--tenant", "acme", "--expires", "2h"]
    made = subprocess.run(
        [sys.executable, "-m", "rustchain", *command],
        env={**os.environ, "RUSTCHAIN_HOME": str(upgraded.home)},
        capture_output=True,
        text=True,
        check=True,
    )
    public = load_public_key(upgraded.home, TOKEN_KEYS)
    assert public is not None
    claims = verify(public, made.stdout.strip())
    assert claims == Claims(sub="tenant:acme", role=Role.TENANT, tenant="acme", exp=claims.exp)
    assert claims.exp is not None and 7000 < claims.exp - time.time() <= 7200
