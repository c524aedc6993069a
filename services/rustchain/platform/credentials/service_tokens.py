"""The embedded deployment's own credentials: its key pairs, the CLI's admin token, and a token
of its own for each service, handed over in the child's environment and never written to a file.

Only the supervisor (the `rustchain up` process) holds the token-signing private key; a child gets
the public keys (in the home) and its own token, and the verifier alone its verdict-signing key.
A service token lives SERVICE_TOKEN_LIFETIME_SECONDS; the supervisor restarts the child with a new
one RENEW_WITHIN_SECONDS before it expires (a restarted executor resumes its missions).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rustchain.domain.access.credentials import Claims, Role
from rustchain.platform.credentials.signing_keys import (
    CHECKPOINT_KEYS,
    LEGACY_KEY_FILE,
    LEGACY_KEY_VARIABLE,
    TOKEN_KEYS,
    VERDICT_KEYS,
    ensure_key_pair,
    private_pem,
)
from rustchain.platform.credentials.tokens import (
    ADMIN_TOKEN_FILE,
    RENEW_WITHIN_SECONDS,
    TOKEN_LIFETIME_SECONDS,
    TOKEN_VARIABLE,
    ensure_admin_token,
    issue,
)
from rustchain.platform.storage.private_files import tighten_home

SERVICE_TOKEN_LIFETIME_SECONDS = TOKEN_LIFETIME_SECONDS
PROBE_LIFETIME_SECONDS = 300.0
"""The supervisor's own token, used once to see NATS admit connections."""
KEY_VARIABLES = frozenset(
    f"{name}{suffix}"
    for pair in (TOKEN_KEYS, VERDICT_KEYS, CHECKPOINT_KEYS)
    for name in (pair.private_variable, pair.public_variable)
    for suffix in ("", "_FILE")
) | {LEGACY_KEY_VARIABLE, TOKEN_VARIABLE}
"""Never passed on from the supervisor's own environment: each child gets what it may hold."""
RELAY_PREFIX = "relay-"
WITHOUT_TOKEN = frozenset({"nats-auth"})
"""Children that present no RustChain token (the callout connects with its own password)."""
Report = Callable[[str], None]


def _date(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass
class ServiceTokens:
    """The supervisor's keys, and the tokens it issues its children."""

    home: Path
    token_key: Ed25519PrivateKey
    verdict_key: Ed25519PrivateKey
    report: Report
    checkpoint_key: Ed25519PrivateKey | None = None
    admin_renew_at: float = 0.0

    @classmethod
    def prepare(cls, home: Path, environ: Mapping[str, str], report: Report) -> ServiceTokens:
        """Tighten the home, make missing key pairs, retire the old HS256 key, renew admin.token;
        each change is reported."""
        for path in tighten_home(home):
            report(f"{path} was open to other users: now readable by its owner only")
        token_key, made = ensure_key_pair(home, TOKEN_KEYS)
        if made:
            report(f"made the token-signing key pair in {TOKEN_KEYS.private_path(home).parent}")
        legacy = home / LEGACY_KEY_FILE
        if legacy.is_file():
            legacy.unlink()
            report(
                f"removed {legacy}, the shared HS256 key of an earlier version: tokens are now"
                " signed with Ed25519 and tokens signed with the old key are refused (make new"
                " ones with `rustchain token create`)"
            )
        if environ.get(LEGACY_KEY_VARIABLE):
            report(f"{LEGACY_KEY_VARIABLE} is set but no longer used: unset it")
        verdict_key, made = ensure_key_pair(home, VERDICT_KEYS)
        if made:
            report(f"made the verifier's verdict-signing key pair in {home / 'keys'}")
        checkpoint_key, made = ensure_key_pair(home, CHECKPOINT_KEYS)
        if made:
            report(f"made the relays' checkpoint-signing key pair in {home / 'keys'}")
        tokens = cls(home, token_key, verdict_key, report, checkpoint_key)
        tokens.renew_admin_token()
        return tokens

    def renew_admin_token(self, wall_now: float | None = None) -> None:
        """Reissue the CLI's admin.token when it is missing, foreign or near its expiry."""
        now = wall_now if wall_now is not None else time.time()
        if now < self.admin_renew_at:
            return
        _, written = ensure_admin_token(self.home, self.token_key, now)
        if written:
            expires = _date(now + TOKEN_LIFETIME_SECONDS)
            self.report(f"wrote a new {self.home / ADMIN_TOKEN_FILE} (valid until {expires})")
        # Looked at again once a day: ensure_admin_token renews within RENEW_WITHIN_SECONDS.
        self.admin_renew_at = now + 86_400.0

    def probe_token(self) -> str:
        """A short-lived admin token of the supervisor's own."""
        claims = Claims(sub="service:supervisor", role=Role.ADMIN)
        return issue(self.token_key, claims, expires_in=PROBE_LIFETIME_SECONDS)

    def environ_for(
        self, child: str, base: Mapping[str, str], wall_now: float | None = None
    ) -> tuple[dict[str, str], float | None]:
        """The child's environment (its own token; the verifier its verdict key) and when its
        token is due for renewal."""
        environ = {name: value for name, value in base.items() if name not in KEY_VARIABLES}
        if child == "verifier":
            environ[VERDICT_KEYS.private_variable] = private_pem(self.verdict_key)
        if child.startswith(RELAY_PREFIX) and self.checkpoint_key is not None:
            # Each store's relay signs its tenant logs' checkpoints; no other child may.
            environ[CHECKPOINT_KEYS.private_variable] = private_pem(self.checkpoint_key)
        if child in WITHOUT_TOKEN:
            return environ, None
        now = wall_now if wall_now is not None else time.time()
        claims = Claims(sub=f"service:{child}", role=Role.ADMIN)
        environ[TOKEN_VARIABLE] = issue(
            self.token_key, claims, now=now, expires_in=SERVICE_TOKEN_LIFETIME_SECONDS
        )
        return environ, now + SERVICE_TOKEN_LIFETIME_SECONDS - RENEW_WITHIN_SECONDS
