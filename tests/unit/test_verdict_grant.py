"""The verifier's signed grant, and the executor's check of it."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rustchain.domain.access.credentials import Claims, CredentialError, Role
from rustchain.domain.plans.verdict_grant import UnverifiedPlanError, VerdictGrant, check_grant
from rustchain.platform.credentials.tokens import issue, issue_verdict, read_verdict, verify

KEY = Ed25519PrivateKey.generate()
"""The verifier's verdict key."""
TOKEN_KEY = Ed25519PrivateKey.generate()
"""The deployment's token key: another pair."""
GRANT = VerdictGrant(tenant="acme", mission_id="m1", plan_hash="h1", policy_hash="p1")


def test_a_grant_reads_back_and_matches_its_own_start() -> None:
    grant = read_verdict(KEY.public_key(), issue_verdict(KEY, GRANT))
    assert grant == GRANT
    check_grant(grant, "acme", "m1", "h1")


@pytest.mark.parametrize(
    ("tenant", "mission", "plan_hash", "refusal"),
    [
        ("globex", "m1", "h1", "another tenant"),
        ("acme", "m2", "h1", "another mission"),
        ("acme", "m1", "h2", "the plan changed after verification"),
    ],
)
def test_a_grant_for_another_start_is_refused(
    tenant: str, mission: str, plan_hash: str, refusal: str
) -> None:
    with pytest.raises(UnverifiedPlanError, match=refusal):
        check_grant(GRANT, tenant, mission, plan_hash)


@pytest.mark.parametrize(
    ("token", "refusal"),
    [
        ("", "carries no verdict token"),
        (issue_verdict(KEY, GRANT, now=time.time() - 3600), "has expired"),
        (issue_verdict(Ed25519PrivateKey.generate(), GRANT), "not one this deployment's verifier"),
        (issue_verdict(TOKEN_KEY, GRANT), "not one this deployment's verifier"),
        (issue(KEY, Claims(sub="root", role=Role.ADMIN)), "not one this deployment's verifier"),
        (
            jwt.encode({**GRANT.model_dump(), "exp": 2**40}, "old-shared-key" * 4, "HS256"),
            "not one this deployment's verifier",
        ),
    ],
)
def test_only_an_unexpired_verdict_signed_with_the_key_is_a_grant(token: str, refusal: str) -> None:
    with pytest.raises(UnverifiedPlanError, match=refusal):
        read_verdict(KEY.public_key(), token)


def test_a_verdict_token_is_no_credential() -> None:
    with pytest.raises(CredentialError):
        verify(KEY.public_key(), issue_verdict(KEY, GRANT))
