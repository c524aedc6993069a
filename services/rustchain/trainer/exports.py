"""Trajectories and their rewards as training data for weight training elsewhere.

Four formats, each one JSON object per line:
- `openai-sft`: OpenAI chat fine-tuning, `{"messages": [...]}` per llm step of a rewarded run.
- `openai-dpo`: OpenAI preference fine-tuning, `{"input": {"messages": [...]},
  "preferred_output": [...], "non_preferred_output": [...]}` from the best and the worst run of
  a scenario group.
- `trl`: Hugging Face TRL's conversational preference format, `{"prompt": [...], "chosen":
  [...], "rejected": [...]}` (the same pairs; TRL's SFT trainer reads `openai-sft` as it is).
- `art`: OpenPipe ART trajectory groups, `{"trajectories": [{"messages_and_choices": [...],
  "reward": r, "metrics": {...}, "metadata": {...}}]}`, one group per scenario.

Each llm step's messages are rebuilt from the inputs StepStarted recorded (what was sent), and
its answer from the step's output: the same messages the model saw.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rustchain.domain.runs.trajectory import Trajectory, TrajectoryStep

FORMATS = ("openai-sft", "openai-dpo", "trl", "art")
Message = dict[str, Any]


@dataclass(frozen=True)
class Rewarded:
    """A trajectory, the scenario it ran, and its reward."""

    trajectory: Trajectory
    scenario: str
    reward: float


def step_messages(step: TrajectoryStep) -> tuple[list[Message], Message] | None:
    """(the messages sent, the answer) of an llm step that answered; None otherwise."""
    inputs = step.inputs
    if step.step_type != "llm" or not isinstance(inputs, dict) or step.status != "succeeded":
        return None
    sent: list[Message] = []
    if inputs.get("system"):
        sent.append({"role": "system", "content": str(inputs["system"])})
    for example in inputs.get("examples") or []:
        sent.append({"role": "user", "content": str(example["prompt"])})
        sent.append({"role": "assistant", "content": str(example["answer"])})
    sent.append({"role": "user", "content": str(inputs.get("prompt", ""))})
    return sent, {"role": "assistant", "content": str(step.output)}


def _conversations(trajectory: Trajectory) -> list[tuple[list[Message], Message]]:
    return [found for step in trajectory.steps if (found := step_messages(step)) is not None]


def _flat(trajectory: Trajectory) -> list[Message]:
    return [m for sent, answer in _conversations(trajectory) for m in [*sent, answer]]


def _groups(rewarded: Sequence[Rewarded]) -> dict[str, list[Rewarded]]:
    groups: dict[str, list[Rewarded]] = {}
    for item in rewarded:
        groups.setdefault(item.scenario, []).append(item)
    return groups


def _pairs(
    rewarded: Sequence[Rewarded], min_gap: float
) -> Iterator[tuple[list[Message], Message, Message]]:
    """(prompt messages, better answer, worse answer) from each group's best and worst run,
    per llm step whose prompt they share, when their rewards differ by at least `min_gap`."""
    for group in _groups(rewarded).values():
        ranked = sorted(group, key=lambda r: (-r.reward, r.trajectory.mission_id))
        best, worst = ranked[0], ranked[-1]
        if best.reward - worst.reward < min_gap:
            continue
        for (sent, good), (sent_worse, bad) in zip(
            _conversations(best.trajectory), _conversations(worst.trajectory), strict=False
        ):
            # A pair compares two answers to one prompt: the user turn must be the same.
            if sent[-1] == sent_worse[-1] and good["content"] != bad["content"]:
                yield sent, good, bad


def export_lines(
    fmt: str, rewarded: Sequence[Rewarded], min_reward: float = 0.0, min_gap: float = 0.1
) -> Iterator[dict[str, Any]]:
    """The records of one format; SFT keeps runs rewarded at least `min_reward`."""
    if fmt == "openai-sft":
        for item in rewarded:
            if item.reward >= min_reward:
                for sent, answer in _conversations(item.trajectory):
                    yield {"messages": [*sent, answer]}
    elif fmt == "openai-dpo":
        for sent, good, bad in _pairs(rewarded, min_gap):
            yield {
                "input": {"messages": sent},
                "preferred_output": [good],
                "non_preferred_output": [bad],
            }
    elif fmt == "trl":
        for sent, good, bad in _pairs(rewarded, min_gap):
            yield {"prompt": sent, "chosen": [good], "rejected": [bad]}
    elif fmt == "art":
        for scenario, group in sorted(_groups(rewarded).items()):
            members = [
                {
                    "messages_and_choices": [
                        message
                        for sent, answer in _conversations(r.trajectory)
                        for message in [*sent, answer]
                    ],
                    "reward": r.reward,
                    "metrics": {"duration_ms": r.trajectory.duration_ms},
                    "metadata": {
                        "scenario": scenario,
                        "mission_id": r.trajectory.mission_id,
                        "outcome": r.trajectory.outcome,
                    },
                }
                for r in group
                if r.reward >= min_reward
            ]
            if members:
                yield {"trajectories": members}
    else:
        raise ValueError(f"unknown export format '{fmt}'; use one of {', '.join(FORMATS)}")


def rewarded_trajectories(
    trajectories: Sequence[Trajectory], judgements: dict[str, list[dict[str, Any]]]
) -> list[Rewarded]:
    """Trajectories with a reward: the mean of the last score of each judge that judged them
    (`judgements`: TrajectoryJudged payloads by mission id). Unjudged ones are left out."""
    found = []
    for trajectory in trajectories:
        judged = judgements.get(trajectory.mission_id) or []
        if not judged:
            continue
        last = {str(j["judge"]).split(":")[0]: float(j["score"]) for j in judged}
        reward = sum(last.values()) / len(last)
        found.append(Rewarded(trajectory, str(judged[-1]["scenario"]), round(reward, 6)))
    return found
