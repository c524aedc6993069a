"""Every credential expires: by default TOKEN_LIFETIME_SECONDS, as `token create --expires` says,
and one without an expiry is refused even when its signature is genuine."""

from __future__ import annotations

import time

import click
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rustchain.cli.token import Duration
from rustchain.domain.access.credentials import Claims, CredentialError, Role
from rustchain.platform.credentials.tokens import TOKEN_LIFETIME_SECONDS, issue, still_good, verify

KEY = Ed25519PrivateKey.generate()
ACME = Claims(sub="ci", role=Role.TENANT, tenant="acme")


def test_a_token_expires_by_default() -> None:
    claims = verify(KEY.public_key(), issue(KEY, ACME))
    assert claims.exp is not None
    assert abs(claims.exp - (time.time() + TOKEN_LIFETIME_SECONDS)) < 5


def test_a_genuine_token_without_an_expiry_is_refused() -> None:
    forever = jwt.encode(ACME.model_dump(mode="json", exclude_none=True), KEY, algorithm="EdDSA")
    with pytest.raises(CredentialError, match="exp"):
        verify(KEY.public_key(), forever)


def test_a_token_close_to_its_expiry_is_due_for_renewal() -> None:
    now = time.time()
    assert still_good(KEY.public_key(), issue(KEY, ACME, now=now), now=now)
    assert not still_good(KEY.public_key(), issue(KEY, ACME, now=now, expires_in=3600), now=now)


@pytest.mark.parametrize(
    ("text", "seconds"), [("3600", 3600), ("90m", 5400), ("12h", 43200), ("30d", 2592000)]
)
def test_token_create_reads_lifetimes_with_units(text: str, seconds: int) -> None:
    assert Duration().convert(text, None, None) == seconds


@pytest.mark.parametrize("text", ["0", "-5", "forever", "3w", ""])
def test_token_create_refuses_a_lifetime_it_cannot_read(text: str) -> None:
    with pytest.raises(click.BadParameter, match="expected a duration"):
        Duration().convert(text, None, None)
