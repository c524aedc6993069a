"""A RULER-style relative judge: one model call scores a group of trajectories of one scenario.

After OpenPipe ART's RULER: the judge sees every trajectory of the same task side by side and
scores each 0-1 against the others with a short rubric (reaching the goal counts most, then
efficiency, with partial credit for progress). It answers strict JSON, one score and one
explanation per trajectory. Anything else (an unreachable endpoint, prose, a missing or
out-of-range score) falls back to the rule judge's score, and the judgement says so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rustchain.domain.policy.model import Policy
from rustchain.domain.runs.trajectory import Trajectory
from rustchain.domain.training.rule_judge import Judgement
from rustchain.domain.training.suite import JudgeSettings, Scenario
from rustchain.steps.support.llm_client import ChatRequest, chat
from rustchain.steps.support.runtime import StepContext, StepRunError

RULER = "ruler"
MAX_SHOWN_CHARACTERS = 2000
JUDGE_TIMEOUT_SECONDS = 120.0
JUDGE_MAX_TOKENS = 1024

_INSTRUCTION = """\
You are a careful judge. You are shown several trajectories: attempts by an AI agent at the
same task. Score each from 0 to 1 relative to the others, using this rubric:

{rubric}

Answer with one JSON object and nothing else:
{{"scores": [{{"trajectory_id": "<id>", "explanation": "<one sentence>", "score": <0..1>}}, ...]}}
with exactly one entry per trajectory."""


class JudgeFailedError(ValueError):
    """The judge model did not give a usable answer."""


def ruler_rubric_hash(settings: JudgeSettings) -> str:
    """The hash of what an LLM score depends on besides the group: judge model and rubric."""
    return hashlib.sha256(f"{settings.model}\x00{settings.rubric}".encode()).hexdigest()


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:MAX_SHOWN_CHARACTERS]


def group_prompt(scenario: Scenario, group: Sequence[Trajectory]) -> str:
    """The judge's user message: the task, then each trajectory's steps and outputs."""
    parts = [f"Task variables: {_shown(scenario.variables)}"]
    if scenario.reference is not None:
        parts.append(f"A reference answer: {_shown(scenario.reference)}")
    for number, trajectory in enumerate(group, start=1):
        steps = "\n".join(
            f"  - {s.step_id} ({s.step_type}, {s.status}, {s.attempts} attempt(s)): "
            f"{_shown(s.output if s.error is None else s.error)}"
            for s in trajectory.steps
        )
        parts.append(
            f'<trajectory id="{number}">\noutcome: {trajectory.outcome}, '
            f"{trajectory.duration_ms} ms\nsteps:\n{steps}\n"
            f"outputs: {_shown(trajectory.outputs)}\n</trajectory>"
        )
    return "\n\n".join(parts)


def parse_scores(answer: str, size: int) -> list[tuple[float, str]]:
    """(score, explanation) per trajectory from the judge's answer, or JudgeFailedError."""
    text = answer.strip()
    if text.startswith("```"):
        # A fenced block is still one JSON object; the fence is the only thing tolerated.
        text = text.strip("`").removeprefix("json").strip()
    try:
        document = json.loads(text)
        entries = document["scores"]
        found = {
            str(e["trajectory_id"]): (e["score"], str(e.get("explanation", ""))) for e in entries
        }
    except (ValueError, KeyError, TypeError) as error:
        raise JudgeFailedError(f"the judge's answer is not the JSON asked for ({error})") from None
    scores = []
    for number in range(1, size + 1):
        if str(number) not in found:
            raise JudgeFailedError(f"the judge gave no score for trajectory {number}")
        score, why = found[str(number)]
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
            raise JudgeFailedError(f"the judge's score for trajectory {number} is not in [0, 1]")
        scores.append((float(score), why))
    return scores


async def judge_group(
    scenario: Scenario,
    group: Sequence[Trajectory],
    rule_scores: Sequence[Judgement],
    settings: JudgeSettings,
    llm_settings: Mapping[str, str],
    tenant: str,
    tenant_policy: Policy | None,
) -> list[Judgement]:
    """One LLM judgement per trajectory of the group; the rule scores where the judge fails."""
    rubric_hash = ruler_rubric_hash(settings)
    try:
        if settings.model is None:
            raise JudgeFailedError("the suite names no judge model")
        messages = [
            {"role": "system", "content": _INSTRUCTION.format(rubric=settings.rubric)},
            {"role": "user", "content": group_prompt(scenario, group)},
        ]
        # The judge is asked like an llm step: same endpoint settings, and the tenant's policy
        # decides whether the judge model may be used.
        context = StepContext(
            tenant,
            "_",
            "judge",
            Path("."),
            JUDGE_TIMEOUT_SECONDS,
            llm_settings,
            None,
            tenant_policy,
        )
        request = ChatRequest(messages, settings.model, None, 0.0, JUDGE_MAX_TOKENS)
        scores = parse_scores(await chat(request, context), len(group))
    except (JudgeFailedError, StepRunError) as error:
        return [
            Judgement(
                judge=f"{RULER}-fallback",
                rubric_hash=rubric_hash,
                score=rule.score,
                passed=rule.passed,
                explanation=f"LLM judge failed ({error}); the rule score stands",
            )
            for rule in rule_scores
        ]
    return [
        Judgement(f"{RULER}:{settings.model}", rubric_hash, round(score, 6), rule.passed, why)
        for (score, why), rule in zip(scores, rule_scores, strict=True)
    ]
