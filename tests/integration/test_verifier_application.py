"""The verifier's use case in one place: verify, record the verdict as a typed PlanVerified in the
mission's chain, and grant a SAFE plan; refused before anything is recorded when the plan's
parts disagree."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rustchain.domain.events.verification_events import VERIFICATION_FACTS
from rustchain.domain.plans.compiler import compile_mission
from rustchain.domain.plans.plan import Plan
from rustchain.platform.credentials.tokens import read_verdict
from rustchain.platform.storage.event_store import (
    EventStoreSettings,
    mission_facts,
    open_event_store,
)
from rustchain.steps import default_registry
from rustchain.verifier.application import InconsistentPlanError, VerifierApplication
from rustchain.verifier.policy_files import default_policy
from tests.paths import REPO

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def _hello() -> Plan:
    text = (REPO / "missions" / "hello.yaml").read_bytes()
    compilation = compile_mission(text, "hello.yaml", default_registry())
    assert compilation.plan is not None
    return compilation.plan


def test_a_safe_plan_is_recorded_typed_and_granted(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    store = open_event_store(EventStoreSettings("verifier", tmp_path))
    app = VerifierApplication(store, lambda _: default_policy(), signing_key=key, clock=lambda: NOW)
    try:
        verification = asyncio.run(app.verify("acme", _hello(), "m1"))
        unrecorded = asyncio.run(app.verify("acme", _hello()))
        (recorded,) = mission_facts(store, "acme", "m1", VERIFICATION_FACTS)
    finally:
        store.close()

    verdict = verification.verdict
    assert verdict.safe and unrecorded.grant_token == ""
    assert recorded.fact.verdict() == verdict and recorded.occurred_at == NOW
    grant = read_verdict(key.public_key(), verification.grant_token)
    assert (grant.tenant, grant.mission_id, grant.plan_hash) == ("acme", "m1", verdict.plan_hash)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        ({"levels": [["ghost"]]}, "levels do not list each of its steps once"),
        ({"levels": []}, "levels do not list each of its steps once"),
        ("depends-on-itself", "which is not an earlier step"),
    ],
    ids=["ghost-level", "no-levels", "depends-on-itself"],
)
def test_a_plan_whose_parts_disagree_is_refused_and_nothing_is_recorded(
    tmp_path: Path, edit: object, reason: str
) -> None:
    plan = _hello()
    if edit == "depends-on-itself":
        first = plan.steps[0].model_copy(update={"depends_on": [plan.steps[0].id]})
        plan = plan.model_copy(update={"steps": [first, *plan.steps[1:]]})
    else:
        assert isinstance(edit, dict)
        plan = plan.model_copy(update=edit)
    store = open_event_store(EventStoreSettings("verifier", tmp_path))
    app = VerifierApplication(store, lambda _: default_policy())
    try:
        with pytest.raises(InconsistentPlanError, match=reason):
            asyncio.run(app.verify("acme", plan, "m1"))
        assert store.last_position() == 0
    finally:
        store.close()
