"""What a step's constraint generator declares: which of its texts go to which sink.

A parameter text is a template: literal pieces and symbols (`{var}`, `{step.output}`). The
verifier solves for the symbols; the runtime check sees the text after substitution.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rustchain.domain.language.references import Reference, ReferenceKind, scan
from rustchain.domain.plans.plan import Plan, PlannedStep
from rustchain.domain.policy.network_hosts import canonical_url
from rustchain.domain.policy.rules import Sink


@dataclass(frozen=True)
class Use:
    """A step gives `text` (a parameter, possibly with references) to a sink."""

    sink: Sink
    field: str
    text: str
    # For an argument: the command it is passed to, whose program decides which rules apply.
    command: str | None = None


@dataclass(frozen=True)
class TokenUse:
    """A step may spend up to `tokens` LLM tokens per attempt (None: the policy's default)."""

    field: str
    tokens: int | None
    calls: int = 1


@dataclass(frozen=True)
class ByteUse:
    """A step may keep up to `size` bytes under the policy's byte bound `rule` (None: the bound;
    any other value, a template, is known only at run time)."""

    rule: str
    field: str
    size: object


Obligation = Use | TokenUse | ByteUse
ConstraintGenerator = Callable[[PlannedStep], list[Obligation]]


@dataclass(frozen=True)
class Symbol:
    """An unknown in a template: a mission variable, or an earlier step's output."""

    name: str
    source_step: str | None = None

    @property
    def is_output(self) -> bool:
        """True for a step's output, false for a mission variable."""
        return self.source_step is not None


Part = str | Symbol


@dataclass(frozen=True)
class Template:
    """A parameter text as literal pieces and symbols."""

    parts: tuple[Part, ...]

    @property
    def symbols(self) -> list[Symbol]:
        """The distinct symbols, in order of appearance."""
        return list(dict.fromkeys(p for p in self.parts if isinstance(p, Symbol)))

    @property
    def is_concrete(self) -> bool:
        """True when the text has no symbol: its value is known before the mission runs."""
        return all(isinstance(p, str) for p in self.parts)

    def substitute(self, values: Mapping[str, str]) -> str:
        """The text with each symbol replaced by its value."""
        return "".join(p if isinstance(p, str) else values[p.name] for p in self.parts)


def _symbol(reference: Reference, step: PlannedStep) -> Symbol:
    if reference.kind is ReferenceKind.VARIABLE:
        return Symbol(reference.name)
    if reference.kind is ReferenceKind.SECRET:
        return Symbol(reference.text[1:-1])
    source = reference.name
    if reference.kind is ReferenceKind.PREVIOUS:
        source = step.depends_on[0] if step.depends_on else reference.name
    return Symbol(f"{source}.{reference.field or 'output'}", source)


def parse_template(
    text: str, step: PlannedStep, plan: Plan, step_ids: Mapping[str, Any]
) -> Template:
    """A parameter text of a step as a template over the plan's variables and step outputs."""
    parts: list[Part] = []
    position = 0
    for found in scan(text, step_ids, plan.variables):
        if not isinstance(found, Reference):
            continue
        if found.offset > position:
            parts.append(text[position : found.offset])
        parts.append(_symbol(found, step))
        position = found.offset + len(found.text)
    if position < len(text) or not parts:
        parts.append(text[position:])
    return Template(tuple(parts))


def canonical_template(template: Template) -> Template:
    """A URL template whose leading literal holds the whole authority, with a numeric host
    written as its address; a host a symbol may change is left to `network.numeric_host`."""
    first = template.parts[0] if template.parts else None
    if not isinstance(first, str):
        return template
    rewritten = canonical_url(first, complete=template.is_concrete)
    return Template((rewritten, *template.parts[1:]))


def text_uses(sink: Sink, field: str, value: Any) -> list[Obligation]:
    """A use for a text parameter; nothing when the parameter is absent or not text."""
    return [Use(sink, field, value)] if isinstance(value, str) else []
