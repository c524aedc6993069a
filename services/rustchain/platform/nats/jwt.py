"""NATS's own JWTs (ed25519 signatures by an nkey), as its auth callout exchanges them.

PyJWT knows no `ed25519-nkey` algorithm, and the only maintained Python library for these claims
is the nats-io `nkeys` package, which signs but does not build JWTs; the format is small (the
nats-io/jwt v2 claims), so it is built here on top of `nkeys`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from typing import Any

import nkeys

from rustchain.domain.access.nats_permissions import SubjectPermissions

HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}
UNLIMITED = -1


class NatsJwtError(ValueError):
    """A NATS JWT that cannot be read."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_account_seed() -> str:
    """A new account nkey seed (`SA...`): the issuer the server trusts for callout answers."""
    return str(nkeys.encode_seed(secrets.token_bytes(32), nkeys.PREFIX_BYTE_ACCOUNT).decode())


def public_key(seed: str) -> str:
    """The public key (`A...`) of a seed."""
    return str(nkeys.from_seed(seed.encode()).public_key.decode())


def encode(claims: dict[str, Any], seed: str) -> str:
    """The claims signed by the seed's key, with `iss` and a `jti` derived from the content."""
    keys = nkeys.from_seed(seed.encode())
    body = {**claims, "iss": keys.public_key.decode()}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    body["jti"] = base64.b32encode(hashlib.sha256(canonical).digest()).decode().rstrip("=")
    signing_input = f"{_b64(json.dumps(HEADER).encode())}.{_b64(json.dumps(body).encode())}"
    return f"{signing_input}.{_b64(keys.sign(signing_input.encode()))}"


def decode_unverified(token: str) -> dict[str, Any]:
    """The claims of a JWT, without checking its signature (the caller knows who sent it)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise NatsJwtError("not a JWT: expected three dot-separated parts")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError) as error:
        raise NatsJwtError(f"not a JWT: {error}") from None
    if not isinstance(claims, dict):
        raise NatsJwtError("not a JWT: its claims are not an object")
    return claims


def permission_claims(permissions: SubjectPermissions | None) -> dict[str, Any]:
    """The `pub`/`sub` claims of a user; an empty allow list denies everything, not nothing."""
    if permissions is None:
        return {}

    def rule(subjects: tuple[str, ...]) -> dict[str, list[str]]:
        return {"allow": list(subjects)} if subjects else {"deny": [">"]}

    return {"pub": rule(permissions.publish), "sub": rule(permissions.subscribe)}


def user_claims(
    user_nkey: str,
    name: str,
    account: str,
    permissions: SubjectPermissions | None,
    issued_at: int,
    expires_at: int | None,
) -> dict[str, Any]:
    """A user JWT's claims: who connects, into which account, with which permissions, until when."""
    claims: dict[str, Any] = {
        "iat": issued_at,
        "sub": user_nkey,
        "name": name,
        "aud": account,
        "nats": {
            "type": "user",
            "version": 2,
            "subs": UNLIMITED,
            "data": UNLIMITED,
            "payload": UNLIMITED,
            **permission_claims(permissions),
        },
    }
    if expires_at is not None:
        claims["exp"] = expires_at
    return claims


def authorization_response(
    user_nkey: str, server_id: str, issued_at: int, user_jwt: str | None, error: str | None
) -> dict[str, Any]:
    """The callout's answer: the user JWT that admits the connection, or why it is refused."""
    answer: dict[str, Any] = {"type": "authorization_response", "version": 2}
    if user_jwt is not None:
        answer["jwt"] = user_jwt
    if error is not None:
        answer["error"] = error
    return {"iat": issued_at, "sub": user_nkey, "aud": server_id, "nats": answer}
