"""Signed credentials and verdicts (JWT, EdDSA over Ed25519), and where the CLI finds its token.

A credential is signed with the deployment's token-signing private key and verified with its
public key (platform/credentials/signing_keys.py says who holds which); a verdict with the
verifier's own key pair. Only EdDSA is accepted: a token signed with HS256 (the old shared key,
or the public key used as an HMAC secret), with `alg: none` or with any other key is refused.
Every credential expires: `exp` is required.

The CLI's token comes from --token, RUSTCHAIN_TOKEN, else `$RUSTCHAIN_HOME/admin.token`, which the
embedded deployment writes (0600) and renews.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ValidationError

from rustchain.domain.access.credentials import Claims, CredentialError, Role
from rustchain.domain.plans.verdict_grant import UnverifiedPlanError, VerdictGrant
from rustchain.platform.storage.private_files import write_private

TOKEN_VARIABLE = "RUSTCHAIN_TOKEN"
ADMIN_TOKEN_FILE = "admin.token"
ALGORITHM = "EdDSA"
LEGACY_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
DAY = 86_400.0
TOKEN_LIFETIME_SECONDS = 30 * DAY
"""A credential's default lifetime (`rustchain token create --expires` changes it)."""
RENEW_WITHIN_SECONDS = 3 * DAY
"""A token of the deployment's own is reissued once less than this is left of it."""
REISSUE = (
    "tokens must be reissued: `rustchain up` renews its own, `rustchain token create` makes others"
)


def issue(
    key: Ed25519PrivateKey,
    claims: Claims,
    now: float | None = None,
    expires_in: float = TOKEN_LIFETIME_SECONDS,
) -> str:
    """A token carrying the claims, signed with the key, expiring `expires_in` seconds from now."""
    payload = claims.model_dump(mode="json", exclude_none=True)
    payload["exp"] = int((now if now is not None else time.time()) + expires_in)
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def _refuse_legacy(token: str) -> None:
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
    except jwt.InvalidTokenError:
        return  # decoding below says what is wrong with it
    if algorithm in LEGACY_ALGORITHMS:
        raise CredentialError(
            f"the token is signed with a shared key ({algorithm}), which this deployment no longer"
            f" accepts: {REISSUE}"
        )


def verify(key: Ed25519PublicKey, token: str) -> Claims:
    """The claims of a token signed with the key's private half and not expired, or
    CredentialError."""
    _refuse_legacy(token)
    try:
        payload = jwt.decode(
            token, key, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]}
        )
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
    key: Ed25519PrivateKey,
    grant: VerdictGrant,
    now: float | None = None,
    expires_in: float = VERDICT_LIFETIME_SECONDS,
) -> str:
    """A verdict token carrying the grant, signed with the verifier's key."""
    payload = grant.model_dump(mode="json")
    payload["exp"] = int((now if now is not None else time.time()) + expires_in)
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def read_verdict(key: Ed25519PublicKey, token: str) -> VerdictGrant:
    """The grant of a verdict token the verifier signed, not expired, or UnverifiedPlanError."""
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


def still_good(key: Ed25519PublicKey, token: str, now: float | None = None) -> bool:
    """Whether the token verifies and has more than RENEW_WITHIN_SECONDS left."""
    try:
        claims = verify(key, token)
    except CredentialError:
        return False
    moment = now if now is not None else time.time()
    return claims.exp is not None and claims.exp - moment > RENEW_WITHIN_SECONDS


def ensure_admin_token(
    home: Path, key: Ed25519PrivateKey, now: float | None = None
) -> tuple[str, bool]:
    """The CLI's admin token in the home (0600), reissued when missing, signed with another key
    or close to its expiry; True when it was written now."""
    path = home / ADMIN_TOKEN_FILE
    if path.is_file():
        token = path.read_text().strip()
        if still_good(key.public_key(), token, now):
            return token, False
    token = issue(key, Claims(sub="admin", role=Role.ADMIN), now=now)
    write_private(path, token)
    return token, True


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
