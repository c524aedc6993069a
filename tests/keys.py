"""A home with the deployment's key pairs, as `rustchain up` makes them, and forged tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rustchain.domain.access.credentials import Claims
from rustchain.platform.credentials.signing_keys import (
    TOKEN_KEYS,
    VERDICT_KEYS,
    ensure_key_pair,
    load_public_key,
    public_pem,
)
from rustchain.platform.credentials.tokens import issue


def home_keys(home: Path) -> Ed25519PrivateKey:
    """Both key pairs in the home; returns the token-signing private key (what `token create`
    holds)."""
    ensure_key_pair(home, VERDICT_KEYS)
    return ensure_key_pair(home, TOKEN_KEYS)[0]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _signed_by_hand(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    """A JWT built by hand, as an attacker would: PyJWT itself refuses to make some of these."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    if secret is None:
        return f"{signing_input}."
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def forgeries(home: Path, claims: Claims, genuine: str) -> dict[str, str]:
    """Tokens for the claims signed with anything but the deployment's private key, by attack.

    `genuine` is a real token of a lesser holder (a tenant), whose payload is rewritten to the
    claims while its signature is kept."""
    public = load_public_key(home, TOKEN_KEYS)
    assert public is not None
    payload = {**claims.model_dump(mode="json", exclude_none=True), "exp": int(time.time()) + 600}
    head, signature = genuine.partition(".")[0], genuine.rpartition(".")[2]
    return {
        "another Ed25519 key": issue(Ed25519PrivateKey.generate(), claims),
        # The classic algorithm confusion: the public key, which every service holds, as an
        # HMAC secret.
        "HS256 with the public key as secret": _signed_by_hand(
            {"alg": "HS256", "typ": "JWT"}, payload, public_pem(public).encode()
        ),
        "HS256 with an old shared key": _signed_by_hand(
            {"alg": "HS256", "typ": "JWT"}, payload, b"the-old-jwt-key-of-the-home-" + b"k" * 20
        ),
        "alg none": _signed_by_hand({"alg": "none", "typ": "JWT"}, payload, None),
        "a genuine signature over other claims": (
            f"{head}.{_b64(json.dumps(payload).encode())}.{signature}"
        ),
    }
