"""Signed credentials (JWT, HS256) with the deployment's key, and where the CLI finds its token.

The key comes from RUSTCHAIN_JWT_KEY, else `$RUSTCHAIN_HOME/jwt.key` (created, mode 0600, by the
embedded deployment). The CLI's token comes from --token, RUSTCHAIN_TOKEN, else
`$RUSTCHAIN_HOME/admin.token`, which the embedded deployment writes on its first start.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path

import jwt
from pydantic import ValidationError

from rustchain.domain.credentials import Claims, CredentialError, Role
from rustchain.domain.verdict_grant import UnverifiedPlanError, VerdictGrant

KEY_VARIABLE = "RUSTCHAIN_JWT_KEY"
TOKEN_VARIABLE = "RUSTCHAIN_TOKEN"
KEY_FILE = "jwt.key"
ADMIN_TOKEN_FILE = "admin.token"
ALGORITHM = "HS256"


def signing_key(
    home: Path, environ: Mapping[str, str] | None = None, create: bool = False
) -> str | None:
    """The deployment's signing key; with `create`, a new one is written when there is none."""
    env = os.environ if environ is None else environ
    if env.get(KEY_VARIABLE):
        return env[KEY_VARIABLE]
    path = home / KEY_FILE
    if path.is_file():
        return path.read_text().strip()
    if not create:
        return None
    key = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(key)
    return key


def issue(
    key: str, claims: Claims, now: float | None = None, expires_in: float | None = None
) -> str:
    """A signed token carrying the claims (and an expiry when asked)."""
    payload = claims.model_dump(mode="json", exclude_none=True)
    if expires_in is not None:
        payload["exp"] = int((now if now is not None else time.time()) + expires_in)
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def verify(key: str, token: str) -> Claims:
    """The claims of a token signed with the key and not expired, or CredentialError."""
    try:
        payload = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": ["sub"]})
    except jwt.ExpiredSignatureError:
        raise CredentialError("the token has expired") from None
    except jwt.InvalidTokenError as error:
        raise CredentialError(f"the token is not valid: {error}") from None
    try:
        return Claims.model_validate(payload)
    except (ValidationError, ValueError) as error:
        raise CredentialError(f"the token's claims are not valid: {error}") from None


VERDICT_LIFETIME_SECONDS = 600.0
"""A verdict is used at once, by the planner that asked for it; a stale one is asked again."""


def issue_verdict(
    key: str,
    grant: VerdictGrant,
    now: float | None = None,
    expires_in: float = VERDICT_LIFETIME_SECONDS,
) -> str:
    """A signed verdict token carrying the grant."""
    payload = grant.model_dump(mode="json")
    payload["exp"] = int((now if now is not None else time.time()) + expires_in)
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def read_verdict(key: str, token: str) -> VerdictGrant:
    """The grant of a verdict token signed with the key and not expired, or UnverifiedPlanError."""
    if not token:
        raise UnverifiedPlanError(
            "the mission carries no verdict token: submit it through the planner, which has the"
            " verifier prove it safe first"
        )
    try:
        payload = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": ["exp"]})
        return VerdictGrant.model_validate(payload)
    except jwt.ExpiredSignatureError:
        raise UnverifiedPlanError("the verdict token has expired: verify the plan again") from None
    except (jwt.InvalidTokenError, ValidationError, ValueError):
        raise UnverifiedPlanError(
            "the verdict token is not one this deployment's verifier signed"
        ) from None


def unverified_claims(token: str) -> Claims | None:
    """What a token says of itself, unchecked: for a client choosing its NATS inbox, never to
    authorise anything (the server side verifies)."""
    try:
        return Claims.model_validate(jwt.decode(token, options={"verify_signature": False}))
    except (jwt.InvalidTokenError, ValidationError, ValueError):
        return None


def ensure_admin_token(home: Path, key: str) -> str:
    """The embedded deployment's admin token, written on first start so the CLI needs no setup."""
    path = home / ADMIN_TOKEN_FILE
    if path.is_file():
        token = path.read_text().strip()
        try:
            verify(key, token)
            return token
        except CredentialError:
            pass
    token = issue(key, Claims(sub="admin", role=Role.ADMIN))
    path.touch(mode=0o600)
    path.write_text(token)
    return token


def cli_token(
    home: Path, explicit: str | None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The token the CLI sends: --token, else RUSTCHAIN_TOKEN, else the deployment's admin token."""
    env = os.environ if environ is None else environ
    if explicit:
        return explicit
    if env.get(TOKEN_VARIABLE):
        return env[TOKEN_VARIABLE]
    path = home / ADMIN_TOKEN_FILE
    return path.read_text().strip() if path.is_file() else None
