"""Keys, tokens and stores under the home are readable by their owner only, from their first byte,
and an older home's open files are tightened when a deployment or service starts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rustchain.cli.serve import ServeError, serve
from rustchain.platform.credentials.signing_keys import (
    TOKEN_KEYS,
    VERDICT_KEYS,
    SigningKeyError,
    ensure_key_pair,
    token_public_key,
)
from rustchain.platform.credentials.tokens import ensure_admin_token
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store, sqlite_path
from rustchain.platform.storage.memory_store import SqliteMemoryStore
from rustchain.platform.storage.private_files import tighten_home
from rustchain.trainer.trajectory_store import SqliteTrajectoryStore


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_key_pairs_and_the_admin_token_are_made_private(tmp_path: Path) -> None:
    token_key, made = ensure_key_pair(tmp_path, TOKEN_KEYS)
    assert made
    ensure_key_pair(tmp_path, VERDICT_KEYS)
    ensure_admin_token(tmp_path, token_key)
    assert _mode(tmp_path / "keys") == 0o700
    for pair in (TOKEN_KEYS, VERDICT_KEYS):
        assert _mode(pair.private_path(tmp_path)) == 0o600
        assert _mode(pair.public_path(tmp_path)) == 0o600
    assert _mode(tmp_path / "admin.token") == 0o600
    again, made = ensure_key_pair(tmp_path, TOKEN_KEYS)
    assert not made and again.public_key() == token_key.public_key()


def test_stores_are_created_private(tmp_path: Path) -> None:
    SqliteMemoryStore(tmp_path / "memory.sqlite3").close()
    SqliteTrajectoryStore(tmp_path / "trainer.sqlite3").close()
    settings = EventStoreSettings(name="executor", home=tmp_path)
    open_event_store(settings).close()
    stores = [tmp_path / "memory.sqlite3", tmp_path / "trainer.sqlite3", sqlite_path(settings)]
    for path in [*stores, *tmp_path.glob("*-wal"), *tmp_path.glob("*-shm")]:
        assert _mode(path) == 0o600, path.name


def test_an_open_home_is_tightened_and_what_was_open_is_named(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    (home / "keys").mkdir(mode=0o755)
    (home / "keys").chmod(0o755)
    for name in ("admin.token", "nats-auth.json", "executor-events.sqlite", "keys/x.pem"):
        (home / name).write_text("x")
        (home / name).chmod(0o644)
    (home / "notes.txt").write_text("not a secret")
    (home / "notes.txt").chmod(0o644)
    changed = tighten_home(home)
    assert {p.name for p in changed} >= {"home", "keys", "admin.token", "x.pem"}
    assert _mode(home) == 0o700 and _mode(home / "keys") == 0o700
    for name in ("admin.token", "nats-auth.json", "executor-events.sqlite", "keys/x.pem"):
        assert _mode(home / name) == 0o600, name
    assert _mode(home / "notes.txt") == 0o644, "only secrets and stores are touched"
    assert tighten_home(home) == []


def test_a_home_with_only_the_old_shared_key_is_never_served_without_auth(
    tmp_path: Path,
) -> None:
    (tmp_path / "jwt.key").write_text("old-shared-key")
    with pytest.raises(SigningKeyError, match="rustchain up"):
        token_public_key(tmp_path, {})

    async def start() -> None:
        await serve("memory", 0, {"RUSTCHAIN_HOME": str(tmp_path)}, {}, asyncio.Event())

    with pytest.raises(SigningKeyError, match="HS256"):
        asyncio.run(start())


def test_an_executor_behind_auth_needs_the_verifiers_public_key(tmp_path: Path) -> None:
    ensure_key_pair(tmp_path, TOKEN_KEYS)

    async def start() -> None:
        await serve("executor", 0, {"RUSTCHAIN_HOME": str(tmp_path)}, {}, asyncio.Event())

    with pytest.raises(ServeError, match="RUSTCHAIN_VERDICT_PUBLIC_KEY"):
        asyncio.run(start())
