"""The embedded deployment's own tokens: each child gets its own, and only what it may hold, and a
child whose token is due for renewal is restarted with a new one."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rustchain.platform.credentials.service_tokens import (
    SERVICE_TOKEN_LIFETIME_SECONDS,
    ServiceTokens,
)
from rustchain.platform.credentials.signing_keys import (
    CHECKPOINT_KEYS,
    TOKEN_KEYS,
    VERDICT_KEYS,
    load_public_key,
)
from rustchain.platform.credentials.tokens import RENEW_WITHIN_SECONDS, TOKEN_VARIABLE, verify
from rustchain.platform.deployment.supervisor import Child, Deployment

HOSTILE = {
    TOKEN_KEYS.private_variable: "a private key the supervisor was started with",
    f"{VERDICT_KEYS.private_variable}_FILE": "/somewhere/verdict.pem",
    TOKEN_KEYS.public_variable: "a public key that is not the home's",
    TOKEN_VARIABLE: "the caller's own token",
    "RUSTCHAIN_JWT_KEY": "old",
    "PATH": "/usr/bin",
}


def test_each_child_gets_its_own_token_and_no_key_it_may_not_hold(tmp_path: Path) -> None:
    said: list[str] = []
    tokens = ServiceTokens.prepare(tmp_path, HOSTILE, said.append)
    assert any("RUSTCHAIN_JWT_KEY is set but no longer used" in line for line in said)
    public = load_public_key(tmp_path, TOKEN_KEYS)
    assert public is not None
    now = time.time()
    for child in ("executor", "verifier", "planner", "relay-executor"):
        environ, renew_at = tokens.environ_for(child, HOSTILE, wall_now=now)
        assert environ["PATH"] == "/usr/bin"
        assert verify(public, environ[TOKEN_VARIABLE]).sub == f"service:{child}"
        assert renew_at == now + SERVICE_TOKEN_LIFETIME_SECONDS - RENEW_WITHIN_SECONDS
        keys = {name for name in environ if "KEY" in name}
        expected = {
            "verifier": {VERDICT_KEYS.private_variable},
            "relay-executor": {CHECKPOINT_KEYS.private_variable},
        }.get(child, set())
        assert keys == expected, child
    callout, renew_at = tokens.environ_for("nats-auth", HOSTILE)
    assert TOKEN_VARIABLE not in callout and renew_at is None


def test_a_child_whose_token_is_due_is_restarted_with_a_new_one(tmp_path: Path) -> None:
    said: list[str] = []
    deployment = Deployment(tmp_path, {"PATH": "/usr/bin"}, said.append)
    deployment.tokens = ServiceTokens.prepare(tmp_path, {}, said.append)
    child = Child(
        "memory", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "m.log"
    )
    deployment._start(child)
    try:
        first = child.process
        assert first is not None and child.renew_at is not None
        deployment.renew_tokens(child.renew_at - 1)
        assert child.process is first, "not due yet"
        deployment.renew_tokens(child.renew_at + 1)
        assert child.process is not first and first.poll() is not None
        assert any("memory's token is due for renewal" in line for line in said)
        assert child.renew_at > time.time() + SERVICE_TOKEN_LIFETIME_SECONDS / 2
    finally:
        deployment.down()


def test_the_admin_token_is_reissued_once_close_to_its_expiry(tmp_path: Path) -> None:
    said: list[str] = []
    tokens = ServiceTokens.prepare(tmp_path, {}, said.append)
    first = (tmp_path / "admin.token").read_text()
    tokens.renew_admin_token(time.time() + 86_400 * 2)
    assert (tmp_path / "admin.token").read_text() == first, "a day later it is still good"
    tokens.renew_admin_token(time.time() + SERVICE_TOKEN_LIFETIME_SECONDS)
    assert (tmp_path / "admin.token").read_text() != first
