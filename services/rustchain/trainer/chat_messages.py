"""A trajectory's model calls as OpenAI chat messages, tool calls included, for the exports.

- An `llm` step is the messages it sent (system, demonstrations, prompt), rebuilt from the inputs
  StepStarted recorded, and its answer.
- An `agent` step is its objective, then each tool it called as an assistant `tool_calls`
  message followed by the `tool` message with the result (in the order it called them), then
  its final answer; with the `tools` it was given, as OpenAI function definitions. The agent
  asked its model for JSON decisions in plain text; the export writes them in the chat format's
  own tool-calling shape, which is what a model fine-tuned for tools is trained on.
- A `tool` step was decided by the mission, not by a model: it only appears in a whole
  trajectory (ART), as a tool call and its result between the model's turns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rustchain.domain.runs.trajectory import Trajectory, TrajectoryStep
from rustchain.steps.tools import tool_registry

Message = dict[str, Any]
Tool = dict[str, Any]
_AGENT_SYSTEM = "You are {name}, an agent working towards an objective with the tools given."


@dataclass(frozen=True)
class Conversation:
    """What a step sent a model, what came back (one or more messages), the tools offered."""

    sent: list[Message]
    reply: list[Message]
    tools: list[Tool] = field(default_factory=list)

    @property
    def single_answer(self) -> bool:
        """Whether the reply is one plain assistant message (what preference pairs compare)."""
        return len(self.reply) == 1 and "tool_calls" not in self.reply[0]


def tool_definitions(names: list[str]) -> list[Tool]:
    """The named tools as OpenAI function definitions (name, description, JSON schema)."""
    registry = tool_registry()
    found: list[Tool] = []
    for name in dict.fromkeys(names):
        tool = registry.get(name)
        schema: dict[str, Any] = {"type": "object", "properties": {}}
        description = ""
        if tool is not None:
            schema = tool.parameters.model_json_schema()
            description = str(tool.summary)
        function = {"name": name, "description": description, "parameters": schema}
        found.append({"type": "function", "function": function})
    return found


def _call(call_id: str, name: str, arguments: Any) -> Message:
    """An assistant's tool call, as the chat format writes one (arguments as a JSON string)."""
    encoded = json.dumps(arguments if isinstance(arguments, dict) else {}, sort_keys=True)
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": encoded}}
    return {"role": "assistant", "tool_calls": [call]}


def _result(call_id: str, result: Any) -> Message:
    content = result if isinstance(result, str) else json.dumps(result, sort_keys=True)
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _llm(inputs: dict[str, Any], output: Any) -> Conversation:
    sent: list[Message] = []
    if inputs.get("system"):
        sent.append({"role": "system", "content": str(inputs["system"])})
    for example in inputs.get("examples") or []:
        sent.append({"role": "user", "content": str(example["prompt"])})
        sent.append({"role": "assistant", "content": str(example["answer"])})
    sent.append({"role": "user", "content": str(inputs.get("prompt", ""))})
    return Conversation(sent, [{"role": "assistant", "content": str(output)}])


def _agent(step_id: str, inputs: dict[str, Any], output: Any) -> Conversation | None:
    if not isinstance(output, dict) or "answer" not in output:
        return None
    objective = str(inputs.get("objective") or inputs.get("task") or "")
    name = str(inputs.get("name") or "an agent")
    sent = [
        {"role": "system", "content": _AGENT_SYSTEM.format(name=name)},
        {"role": "user", "content": objective},
    ]
    reply: list[Message] = []
    for number, call in enumerate(output.get("tool_calls") or [], start=1):
        call_id = f"call_{step_id}_{number}"
        reply.append(_call(call_id, str(call.get("tool")), call.get("parameters")))
        reply.append(_result(call_id, call.get("result")))
    reply.append({"role": "assistant", "content": str(output["answer"])})
    tools = tool_definitions([str(t) for t in inputs.get("tools") or []])
    return Conversation(sent, reply, tools)


def step_conversation(step: TrajectoryStep) -> Conversation | None:
    """The model conversation of an llm or agent step that succeeded; None for any other."""
    inputs = step.inputs
    if step.status != "succeeded" or not isinstance(inputs, dict):
        return None
    if step.step_type == "llm":
        return _llm(inputs, step.output)
    if step.step_type == "agent":
        return _agent(step.step_id, inputs, step.output)
    return None


def conversations(trajectory: Trajectory) -> list[Conversation]:
    """Every model conversation of a trajectory, in step order."""
    return [found for s in trajectory.steps if (found := step_conversation(s)) is not None]


def whole_trajectory(trajectory: Trajectory) -> tuple[list[Message], list[Tool]]:
    """Every message of a trajectory in step order, the mission's own tool steps as tool calls
    with their results, and every tool any of them used."""
    messages: list[Message] = []
    tools: list[Tool] = []
    for step in trajectory.steps:
        found = step_conversation(step)
        if found is not None:
            messages += [*found.sent, *found.reply]
            tools += found.tools
        elif step.step_type == "tool" and step.status == "succeeded":
            inputs = step.inputs if isinstance(step.inputs, dict) else {}
            name = str(inputs.get("tool"))
            call_id = f"call_{step.step_id}"
            messages.append(_call(call_id, name, inputs.get("parameters")))
            messages.append(_result(call_id, step.output))
            tools += tool_definitions([name])
    unique = {tool["function"]["name"]: tool for tool in tools}
    return messages, list(unique.values())
