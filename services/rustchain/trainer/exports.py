"""Trajectories and their rewards as training data for weight training elsewhere.

Four formats, each one JSON object per line:
- `openai-sft`: OpenAI chat fine-tuning, `{"messages": [...], "tools": [...]}` per llm or agent
  step of a rewarded run (`tools` when the step was given any).
- `openai-dpo`: OpenAI preference fine-tuning, `{"input": {"messages": [...]},
  "preferred_output": [...], "non_preferred_output": [...]}` from the best and the worst run of
  a scenario group, where both answered with one assistant message (the format's outputs).
- `trl`: Hugging Face TRL's conversational preference format, `{"prompt": [...], "chosen":
  [...], "rejected": [...]}` (the same pairs, and those of agents' tool calls with `tools`; TRL's
  SFT trainer reads `openai-sft` as it is).
- `art`: OpenPipe ART trajectory groups, `{"trajectories": [{"messages_and_choices": [...],
  "tools": [...], "reward": r, "metrics": {...}, "metadata": {...}}]}`, one group per scenario.

Messages are rebuilt from the inputs StepStarted recorded (what was sent) and the steps' outputs,
tool calls in the chat format's own shape (`rustchain.trainer.chat_messages`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rustchain.domain.runs.trajectory import Trajectory
from rustchain.trainer.chat_messages import Conversation, conversations, whole_trajectory

FORMATS = ("openai-sft", "openai-dpo", "trl", "art")
Message = dict[str, Any]


@dataclass(frozen=True)
class Rewarded:
    """A trajectory, the scenario it ran, and its reward."""

    trajectory: Trajectory
    scenario: str
    reward: float


def _groups(rewarded: Sequence[Rewarded]) -> dict[str, list[Rewarded]]:
    groups: dict[str, list[Rewarded]] = {}
    for item in rewarded:
        groups.setdefault(item.scenario, []).append(item)
    return groups


def _pairs(
    rewarded: Sequence[Rewarded], min_gap: float
) -> Iterator[tuple[Conversation, Conversation]]:
    """(better, worse) conversations from each group's best and worst run, per model step
    whose prompt they share, when their rewards differ by at least `min_gap`."""
    for group in _groups(rewarded).values():
        ranked = sorted(group, key=lambda r: (-r.reward, r.trajectory.mission_id))
        best, worst = ranked[0], ranked[-1]
        if best.reward - worst.reward < min_gap:
            continue
        for good, bad in zip(
            conversations(best.trajectory), conversations(worst.trajectory), strict=False
        ):
            # A pair compares two answers to one prompt: the user turn must be the same.
            if good.sent[-1] == bad.sent[-1] and good.reply != bad.reply:
                yield good, bad


def export_lines(
    fmt: str, rewarded: Sequence[Rewarded], min_reward: float = 0.0, min_gap: float = 0.1
) -> Iterator[dict[str, Any]]:
    """The records of one format; SFT keeps runs rewarded at least `min_reward`."""
    if fmt == "openai-sft":
        for item in rewarded:
            if item.reward >= min_reward:
                for found in conversations(item.trajectory):
                    yield _with_tools({"messages": [*found.sent, *found.reply]}, found.tools)
    elif fmt == "openai-dpo":
        for good, bad in _pairs(rewarded, min_gap):
            if good.single_answer and bad.single_answer:
                yield {
                    "input": {"messages": good.sent},
                    "preferred_output": good.reply,
                    "non_preferred_output": bad.reply,
                }
    elif fmt == "trl":
        for good, bad in _pairs(rewarded, min_gap):
            pair = {"prompt": good.sent, "chosen": good.reply, "rejected": bad.reply}
            yield _with_tools(pair, good.tools)
    elif fmt == "art":
        for scenario, group in sorted(_groups(rewarded).items()):
            members = [
                {
                    **_art_messages(r.trajectory),
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


def _with_tools(record: dict[str, Any], tools: list[dict[str, Any]]) -> dict[str, Any]:
    return {**record, "tools": tools} if tools else record


def _art_messages(trajectory: Trajectory) -> dict[str, Any]:
    messages, tools = whole_trajectory(trajectory)
    return _with_tools({"messages_and_choices": messages}, tools)


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
