"""Learned policies fold from their events and stay within the tenant's policy; the RULER
judge's answer is taken only when it is the strict JSON asked for."""

from __future__ import annotations

from typing import Any

import pytest

from rustchain.domain.policy.model import LlmPolicy, Policy
from rustchain.domain.runs.reexecution import differences
from rustchain.domain.runs.tuned_policy import (
    POLICY_EVALUATED,
    POLICY_PROMOTED,
    POLICY_PROPOSED,
    POLICY_ROLLED_BACK,
    Demonstration,
    StepSettings,
    fold_policies,
    reapply_tuning,
    tuned_inputs,
)
from rustchain.trainer.llm_judge import JudgeFailedError, parse_scores

SECOND_OK = (
    '{{"scores": [{{"trajectory_id": "1", "score": {first}}},'
    ' {{"trajectory_id": "2", "score": 0}}]}}'
)
SETTINGS = {"classify": {"model": "m2", "system": "one word"}}


def proposed(version: int, mission: str = "triage") -> tuple[str, dict[str, Any], str]:
    payload = {"mission": mission, "version": version, "steps": SETTINGS, "reason": "r"}
    return POLICY_PROPOSED, payload, "t"


def fact(kind: str, **payload: Any) -> tuple[str, dict[str, Any], str]:
    return kind, {"mission": "triage", **payload}, "t"


def test_promotions_and_rollbacks_fold_to_the_version_in_force() -> None:
    score = {"score": 0.5, "passed": 1, "total": 2}
    events = [
        proposed(1),
        fact(POLICY_EVALUATED, version=1, baseline=score, candidate=score, interval=[0.1, 0.2]),
        fact(POLICY_PROMOTED, version=1),
        proposed(2),
        fact(POLICY_PROMOTED, version=2),
        proposed(1, mission="other"),
    ]

    state = fold_policies("triage", events)
    assert state.current == 2 and state.next_version == 3
    assert state.versions[1].interval == (0.1, 0.2)
    back = fold_policies("triage", [*events, fact(POLICY_ROLLED_BACK, version=2, to_version=1)])
    assert back.current == 1 and back.versions[2].rolled_back_at == "t"
    assert fold_policies("triage", []).promoted() is None


def test_tuned_inputs_apply_the_settings_and_record_them() -> None:
    settings = StepSettings(model="m2", examples=[Demonstration(prompt="p", answer="a")])
    inputs = {"prompt": "Ticket: x", "model": "m1", "temperature": 0}

    tuned, record = tuned_inputs(inputs, settings, 3, Policy())

    assert tuned == {**inputs, "model": "m2", "examples": [{"prompt": "p", "answer": "a"}]}
    assert record == {"policy_version": 3, "overrides": settings.overrides()}
    # Re-execution renders the mission's own inputs and applies the recorded settings again.
    assert differences(tuned, reapply_tuning(inputs, record)) == []


def test_settings_the_tenant_policy_refuses_are_not_applied() -> None:
    tenant = Policy(llm=LlmPolicy(allowed_models=["m1"], max_tokens_per_step=100))
    inputs = {"prompt": "x"}

    for settings, rule in ((StepSettings(model="m2"), "m2"), (StepSettings(max_tokens=500), "500")):
        tuned, record = tuned_inputs(inputs, settings, 1, tenant)
        assert tuned == inputs
        assert rule in record["refused"]
        assert reapply_tuning(inputs, record) == inputs


def test_a_strict_json_answer_gives_one_score_per_trajectory() -> None:
    answer = (
        '```json\n{"scores": [{"trajectory_id": "1", "explanation": "good", "score": 0.9},'
        ' {"trajectory_id": 2, "explanation": "bad", "score": 0}]}\n```'
    )

    assert parse_scores(answer, 2) == [(0.9, "good"), (0.0, "bad")]


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("They are all fine.", "not the JSON asked for"),
        ('{"scores": [{"trajectory_id": "1", "score": 0.5}]}', "no score for trajectory 2"),
        (SECOND_OK.format(first="1.5"), "not in [0, 1]"),
        (SECOND_OK.format(first="true"), "not in [0, 1]"),
    ],
)
def test_anything_else_is_a_judge_failure(answer: str, why: str) -> None:
    with pytest.raises(JudgeFailedError, match=why.replace("[", r"\[").replace("]", r"\]")):
        parse_scores(answer, 2)
