"""Runtime checks on concrete values: the same rules the verifier proves, checked again by runners.

Paths are judged lexically (segments), never by looking at a file system; the runner resolves the
path inside the workspace only after the check passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rustchain.domain.policy.languages import command_words
from rustchain.domain.policy.model import Policy
from rustchain.domain.policy.network_hosts import canonical_url
from rustchain.domain.policy.program_rules import concrete_can, written_words
from rustchain.domain.policy.rules import SINK_CATEGORY, Sink, compile_policy


@dataclass(frozen=True)
class Refusal:
    """A concrete value a rule refuses, and why."""

    rule: str
    explanation: str
    value: str

    def render(self) -> str:
        """`[rule] explanation: value`."""
        return f"[{self.rule}] {self.explanation}: {self.value!r}"


def check_value(policy: Policy, sink: Sink, value: str) -> Refusal | None:
    """The first rule of the sink that the value breaks, if any."""
    for rule in compile_policy(policy).rules(sink):
        if rule.language.matches(value):
            return Refusal(rule.id, rule.explanation, value)
    return None


def check_command(
    policy: Policy, command: str, args: Sequence[str] = (), shell: bool = False
) -> Refusal | None:
    """A command step's program and arguments: `command` is split at ASCII white space."""
    refusal = check_value(policy, Sink.SHELL if shell else Sink.COMMAND_LINE, command)
    for index in range(len(args)):
        if refusal is not None:
            break
        refusal = check_argument(policy, command, args, index, shell)
    return refusal


def check_argument(
    policy: Policy, command: str, args: Sequence[str], index: int, shell: bool = False
) -> Refusal | None:
    """One argument of a command step, judged by its program's model and the words around it."""
    compiled = compile_policy(policy)
    argument = args[index]
    if shell:
        rules = compiled.rules(Sink.ARGUMENT)
    else:
        program, *inline = command_words(command) or [""]
        commands = compiled.commands
        kind = commands.kind(program)
        words = [*inline, *args]
        written = False
        if kind not in ("text", "unmodelled"):
            written = written_words(kind, words, concrete_can)[len(inline) + index]
        rules = commands.for_word(program, written)
    for rule in rules:
        if rule.language.matches(argument):
            return Refusal(rule.id, rule.explanation, argument)
    return None


def check_environment(policy: Policy, name: str) -> Refusal | None:
    """The name of an environment variable a command step sets."""
    return check_value(policy, Sink.ENVIRONMENT, name)


def check_path(policy: Policy, path: str, write: bool = False) -> Refusal | None:
    """A workspace-relative path a step reads (or, with `write`, changes)."""
    return check_value(policy, Sink.PATH_WRITE if write else Sink.PATH_READ, path)


def check_url(policy: Policy, url: str) -> Refusal | None:
    """A URL an http step requests: a numeric host judged as the address it names, then as
    written (a spelling other than the address itself is refused either way)."""
    canonical = canonical_url(url)
    if canonical != url:
        refusal = check_value(policy, Sink.URL, canonical)
        if refusal is not None:
            return Refusal(refusal.rule, f"{refusal.explanation} (as {canonical})", url)
    return check_value(policy, Sink.URL, url)


def check_model(policy: Policy, model: str) -> Refusal | None:
    """A model an llm, agent or chain step asks."""
    return check_value(policy, Sink.MODEL, model)


def check_tool(policy: Policy, tool: str) -> Refusal | None:
    """A tool a tool or agent step calls."""
    return check_value(policy, Sink.TOOL, tool)


def check_tokens(policy: Policy, max_tokens: int) -> Refusal | None:
    """An llm step's token limit against the per-step budget."""
    if max_tokens > policy.llm.max_tokens_per_step:
        limit = policy.llm.max_tokens_per_step
        return Refusal("llm.tokens", f"asks for more than {limit} tokens", str(max_tokens))
    return None


BYTE_BOUNDS = {
    "commands.output": "commands.max_output_bytes",
    "network.response": "network.max_response_bytes",
}
"""Each byte bound's rule, and the policy line that sets it."""


def byte_bound(policy: Policy, rule: str) -> int:
    """The most bytes the policy lets a step ask for under `rule` (a key of BYTE_BOUNDS)."""
    if rule == "commands.output":
        return policy.commands.max_output_bytes
    return policy.network.max_response_bytes


def check_bytes(policy: Policy, rule: str, field: str, size: int) -> Refusal | None:
    """A step's byte limit (max_output_bytes, max_response_bytes) against the policy's bound."""
    bound = byte_bound(policy, rule)
    if size > bound:
        return Refusal(
            rule, f"{field} asks for more than {bound} bytes ({BYTE_BOUNDS[rule]})", str(size)
        )
    return None


def check_data_flow(policy: Policy, source_step_type: str, sink: Sink) -> Refusal | None:
    """Output of a step of that type, about to be given to that sink."""
    category = SINK_CATEGORY[sink]
    if category is None or policy.data_flow.allows(source_step_type, category):
        return None
    return Refusal(
        "data_flow.untrusted",
        f"output of an untrusted '{source_step_type}' step may not reach a {category}",
        source_step_type,
    )


def check_secret_flow(policy: Policy, secret: str, sink: Sink) -> Refusal | None:
    """A secret's value about to be given to that sink: a command line, a file path or a URL
    only when the policy lists it in `data_flow.secrets_to`."""
    category = SINK_CATEGORY[sink]
    if category is None or category in policy.data_flow.secrets_to:
        return None
    return Refusal(
        "data_flow.secrets",
        f"the secret '{secret}' may not reach a {category} (data_flow.secrets_to)",
        f"{{secrets.{secret}}}",
    )
