"""What each credential may do on NATS, and the NATS JWTs that carry it."""

from __future__ import annotations

import base64
import time

import nkeys
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rustchain.domain.access.credentials import Claims, Role
from rustchain.domain.access.nats_permissions import inbox_prefix, subject_permissions
from rustchain.platform.credentials.tokens import issue
from rustchain.platform.nats.auth_callout import authorize_connection
from rustchain.platform.nats.jwt import decode_unverified, encode, new_account_seed, public_key

SIGNING_KEY = Ed25519PrivateKey.generate()
KEY = SIGNING_KEY.public_key()


def test_the_admin_is_unrestricted() -> None:
    assert subject_permissions(Claims(sub="admin", role=Role.ADMIN)) is None


def test_a_tenant_may_read_only_its_own_stream_and_inbox() -> None:
    claims = Claims(sub="ci", role=Role.TENANT, tenant="acme")
    permissions = subject_permissions(claims)
    assert permissions is not None
    assert all(
        any(name in subject for name in ("RUSTCHAIN_ACME", "CHECKPOINTS_ACME", "ARTIFACTS_ACME"))
        for subject in permissions.publish
    )
    assert any("CHECKPOINTS_ACME" in subject for subject in permissions.publish)
    assert "$JS.API.CONSUMER.CREATE.OBJ_ARTIFACTS_ACME.>" in permissions.publish
    assert not any(subject.startswith("$O.") for subject in permissions.publish)
    assert not any(subject.startswith("rustchain") for subject in permissions.publish)
    assert permissions.subscribe == (
        "_INBOX.tenant-acme.>",
        "rustchain.acme.>",
        "rustchain-checkpoints.acme.>",
    )
    assert inbox_prefix(claims) == "_INBOX.tenant-acme"


def test_an_auditor_reads_each_granted_tenant_in_an_inbox_of_its_own() -> None:
    claims = Claims(sub="Jane Doe <jane@example.com>", role=Role.AUDITOR, tenants=["a", "b"])
    permissions = subject_permissions(claims)
    assert permissions is not None
    streams = {s.split(".")[4] for s in permissions.publish if "CONSUMER.CREATE" in s}
    assert streams == {
        *("RUSTCHAIN_A", "RUSTCHAIN_B", "CHECKPOINTS_A", "CHECKPOINTS_B"),
        *("OBJ_ARTIFACTS_A", "OBJ_ARTIFACTS_B"),
    }
    prefix = inbox_prefix(claims)
    assert prefix.startswith("_INBOX.auditor-") and " " not in prefix and "@" not in prefix
    assert prefix != inbox_prefix(Claims(sub="someone else", role=Role.AUDITOR, tenants=["a"]))


def test_a_jwt_is_signed_by_the_issuer_seed() -> None:
    seed = new_account_seed()
    token = encode({"sub": "U123", "nats": {"type": "user"}}, seed)
    header, payload, signature = token.split(".")
    keys = nkeys.from_seed(seed.encode())
    assert keys.public_key.decode() == public_key(seed)
    padded = signature + "=" * (-len(signature) % 4)
    assert keys.verify(f"{header}.{payload}".encode(), base64.urlsafe_b64decode(padded))
    claims = decode_unverified(token)
    assert claims["iss"] == public_key(seed) and claims["sub"] == "U123" and claims["jti"]


def _request(token: str | None) -> str:
    connect_opts = {} if token is None else {"auth_token": token}
    claims = {
        "nats": {
            "user_nkey": "UNEWUSER",
            "server_id": {"id": "NSERVER"},
            "connect_opts": connect_opts,
        }
    }
    return encode(claims, new_account_seed())


@pytest.mark.parametrize(
    ("token", "refusal"),
    [
        (None, "a RustChain token is required"),
        ("garbage", "the token is not valid"),
        (issue(Ed25519PrivateKey.generate(), Claims(sub="admin", role=Role.ADMIN)), "not valid"),
    ],
)
def test_the_callout_refuses_a_connection_without_a_valid_token(
    token: str | None, refusal: str
) -> None:
    seed = new_account_seed()
    answer = decode_unverified(authorize_connection(_request(token), seed, KEY, now=1000))
    assert answer["aud"] == "NSERVER" and answer["sub"] == "UNEWUSER"
    assert "jwt" not in answer["nats"]
    assert refusal in answer["nats"]["error"]


def test_the_callout_admits_a_tenant_with_its_permissions_until_its_token_expires() -> None:
    seed = new_account_seed()
    claims = Claims(sub="ci", role=Role.TENANT, tenant="acme")
    now = int(time.time())
    token = issue(SIGNING_KEY, claims, now=now, expires_in=60)
    answer = decode_unverified(authorize_connection(_request(token), seed, KEY, now=now))
    user = decode_unverified(answer["nats"]["jwt"])
    assert user["sub"] == "UNEWUSER" and user["aud"] == "RUSTCHAIN" and user["exp"] == now + 60
    assert user["iss"] == public_key(seed)
    permissions = subject_permissions(claims)
    assert permissions is not None
    assert user["nats"]["sub"] == {"allow": list(permissions.subscribe)}
    assert user["nats"]["pub"] == {"allow": list(permissions.publish)}
