"""One small question per rule, step and text: can this template take a value the rule refuses?

Known texts and small enumerations are decided by the runtime matcher itself; only symbolic ones
go to Z3, each in its own solver with a timeout. The violation is stated positively (`InRe` of
the template in the rule's language), as the solver finds those quickly.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import z3

from rustchain.domain.policy.languages import Rule
from rustchain.domain.policy.obligations import Symbol, Template
from rustchain.domain.policy.regex import ANYTHING, EMPTY, Lang, quotient, union
from rustchain.verifier.z3_encoding import RegexEncoder, model_text, string_value

MAX_ENUMERATED = 256
Z3_LOCK = threading.RLock()
"""Held for a whole verification (engine.verify_plan): Z3's Python API shares one context per
process, and a term is freed (Z3_dec_ref) by whichever thread drops it last, so every Z3 object
of a verification is made, used and dropped by the thread holding this lock."""


class OutcomeKind(StrEnum):
    """What one query established."""

    PROVEN = "proven"
    VIOLATED = "violated"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Outcome:
    """A query's answer; a violation carries the symbols' values and the resulting text."""

    kind: OutcomeKind
    values: dict[str, str] = field(default_factory=dict)
    value: str | None = None
    reason: str | None = None


PROVEN = Outcome(OutcomeKind.PROVEN)


@dataclass(frozen=True)
class SymbolDomain:
    """The values a symbol may take: a language, and the list itself when it is a short one."""

    language: Lang
    values: tuple[str, ...] | None = None


UNCONSTRAINED = SymbolDomain(ANYTHING)


class QueryRunner:
    """Decides templates against rules for one plan, counting queries and solver time."""

    def __init__(self, domains: Mapping[str, SymbolDomain], timeout_ms: int) -> None:
        self.domains = domains
        self.timeout_ms = timeout_ms
        self.queries = 0
        self.solver_seconds = 0.0
        self._encoder = RegexEncoder()
        # Keyed by the template's shape: its literal parts and, for each symbol in order of first
        # appearance, its domain. Texts over different variables of the same type and pattern
        # ask the same question; the cached answer keeps the symbols it was found for.
        self._cache: dict[tuple[object, ...], tuple[Outcome, tuple[Symbol, ...]]] = {}

    def domain(self, symbol: Symbol) -> SymbolDomain:
        """The values a symbol may take (step outputs: any text)."""
        return self.domains.get(symbol.name, UNCONSTRAINED)

    def first_breach(
        self, template: Template, rules: Sequence[Rule]
    ) -> tuple[Rule, Outcome] | None:
        """The first rule, in order, the template may break or that stays undecided; None: safe.

        One query per rule: asking all rules at once in one union was measured slower (a union
        of host or path-prefix languages takes z3 hundreds of milliseconds, each alone a few).
        """
        # Most known texts break no rule: one pass over the union says so.
        known = template.is_concrete and len(rules) > 1
        if known and not _either(tuple(rules)).matches(template.substitute({})):
            return None
        for rule in rules:
            outcome = self.decide(template, rule)
            if outcome.kind is not OutcomeKind.PROVEN:
                return rule, outcome
        return None

    def decide(self, template: Template, rule: Rule) -> Outcome:
        """Whether some value of the template's symbols puts it in the rule's language."""
        if rule.language is EMPTY:
            return PROVEN
        if template.is_concrete:
            text = template.substitute({})
            return _concrete(rule, {}, text)
        found = self._enumerate(template, rule)
        if found is not None:
            return found
        # `p + x + s` is in the language exactly when `x` is in its quotient by `p` and `s`; texts
        # that differ only in their literal ends often share a quotient, and so one query.
        parts = template.parts
        prefix = parts[0] if isinstance(parts[0], str) else ""
        suffix = parts[-1] if isinstance(parts[-1], str) else ""
        middle = Template(parts[1 if prefix else 0 : len(parts) - 1 if suffix else len(parts)])
        language = quotient(rule.language, prefix, suffix)
        if language is EMPTY:
            return PROVEN
        shape, symbols = self._shape(middle)
        key = (shape, language)  # the language itself: an id could be reused
        cached = self._cache.get(key)
        if cached is None:
            found = self._solve(middle, language)
            self._cache[key] = (found, symbols)
        else:
            found = _renamed(cached[0], cached[1], symbols)
        if found.kind is not OutcomeKind.VIOLATED:
            return found
        confirmed = _concrete(rule, found.values, template.substitute(found.values))
        if confirmed.kind is not OutcomeKind.VIOLATED:
            return Outcome(OutcomeKind.UNKNOWN, reason="solver model not confirmed at run time")
        return confirmed

    def _shape(self, template: Template) -> tuple[tuple[object, ...], tuple[Symbol, ...]]:
        """The template with each symbol replaced by (its first-appearance index, its domain),
        and its symbols in that order."""
        order: dict[str, int] = {}
        symbols: list[Symbol] = []
        shape: list[object] = []
        for part in template.parts:
            if isinstance(part, str):
                shape.append(part)
                continue
            if part.name not in order:
                order[part.name] = len(symbols)
                symbols.append(part)
            shape.append((order[part.name], self.domain(part)))
        return tuple(shape), tuple(symbols)

    def _enumerate(self, template: Template, rule: Rule) -> Outcome | None:
        symbols = template.symbols
        choices = [self.domain(s).values for s in symbols]
        if any(c is None for c in choices):
            return None
        finite = [c for c in choices if c is not None]
        count = 1
        for values in finite:
            count *= len(values)
        if count > MAX_ENUMERATED:
            return None
        for combination in itertools.product(*finite):
            chosen = {s.name: v for s, v in zip(symbols, combination, strict=True)}
            outcome = _concrete(rule, chosen, template.substitute(chosen))
            if outcome.kind is OutcomeKind.VIOLATED:
                return outcome
        return PROVEN

    def _solve(self, template: Template, language: Lang) -> Outcome:
        # One query at a time: see Z3_LOCK (taken again here for callers outside verify_plan).
        with Z3_LOCK:
            return self._solve_alone(template, language)

    def _solve_alone(self, template: Template, language: Lang) -> Outcome:
        solver = z3.Solver()
        solver.set("timeout", self.timeout_ms)
        variables: dict[str, z3.SeqRef] = {}
        for symbol in template.symbols:
            variable = z3.String(symbol.name)
            variables[symbol.name] = variable
            domain = self.domain(symbol).language
            if domain is not ANYTHING:
                solver.add(z3.InRe(variable, self._encoder.encode(domain)))
        pieces = [
            string_value(p) if isinstance(p, str) else variables[p.name] for p in template.parts
        ]
        text = pieces[0] if len(pieces) == 1 else z3.Concat(*pieces)
        solver.add(z3.InRe(text, self._encoder.encode(language)))
        started = time.perf_counter()
        answer = solver.check()
        self.solver_seconds += time.perf_counter() - started
        self.queries += 1
        if answer == z3.unsat:
            return PROVEN
        if answer == z3.unknown:
            return Outcome(OutcomeKind.UNKNOWN, reason=str(solver.reason_unknown()))
        model = solver.model()
        values = {
            name: model_text(model.eval(variable, model_completion=True))
            for name, variable in variables.items()
        }
        text_value = template.substitute(values)
        if not language.matches(text_value):
            # Never report what the runtime would accept: a disagreement is a refusal, undecided.
            return Outcome(OutcomeKind.UNKNOWN, reason="solver model not confirmed at run time")
        return Outcome(OutcomeKind.VIOLATED, values, text_value)


_UNIONS: dict[tuple[Rule, ...], Lang] = {}


def _either(rules: tuple[Rule, ...]) -> Lang:
    """The texts that break any of the rules (kept per tuple of rules: they are shared)."""
    found = _UNIONS.get(rules)
    if found is None:
        if len(_UNIONS) > 1024:
            _UNIONS.clear()
        found = _UNIONS[rules] = union(*(r.language for r in rules))
    return found


def _renamed(outcome: Outcome, solved: tuple[Symbol, ...], asked: tuple[Symbol, ...]) -> Outcome:
    """A cached answer for a template of the same shape, its values named by the asked symbols."""
    if not outcome.values:
        return outcome
    names = {s.name: a.name for s, a in zip(solved, asked, strict=True)}
    values = {names[name]: value for name, value in outcome.values.items()}
    return Outcome(outcome.kind, values, outcome.value, outcome.reason)


def _concrete(rule: Rule, values: dict[str, str], text: str) -> Outcome:
    if rule.language.matches(text):
        return Outcome(OutcomeKind.VIOLATED, values, text)
    return PROVEN
