"""The rules of a command's words under one policy, chosen by the program's model.

A word of a modelled program must not use an option that runs a program or reaches beneath its
operands, and every word, and every file name attached to an option (`-o/x`, `--output=x`), is
a workspace path: no `..`, not absolute, not denied; read-only too where the program may write
it. A program the policy allows without a model (`commands.unmodelled_programs`) keeps the
policy's argument patterns and the denied paths; one that only prints has no argument rule.
"""

from __future__ import annotations

from rustchain.domain.policy.languages import PathRules, Rule, some_later_word
from rustchain.domain.policy.model import Policy
from rustchain.domain.policy.patterns import any_glob
from rustchain.domain.policy.program_models import MODELS, Effect, Operands
from rustchain.domain.policy.program_rules import program_languages
from rustchain.domain.policy.regex import EMPTY, Lang, complement, intersect, literal, union

UNKNOWN = None  # the program of a command line that is not known before the run
RUNS = "uses an option that runs another program (find -exec, sort --compress-program...)"
BENEATH = "uses an option that reaches every file beneath its operands, denied paths included"
NAMED_INSIDE = "uses an option that reads the files named inside a file, which no rule can see"


def may_write(program: str) -> bool:
    """Whether a modelled program can write a file its words name."""
    model = MODELS[program]
    writes = any(o.effect is Effect.WRITES for o in model.options)
    return writes or model.operands not in (Operands.READ, Operands.TEXT)


class CommandRules:
    """The rules of each word of a command, per program, for one policy."""

    def __init__(self, policy: Policy, denied_argument: Rule, paths: PathRules) -> None:
        self._argument = denied_argument
        self._paths = paths
        self._text_only = any_glob(policy.commands.text_only_programs)
        self._cache: dict[tuple[str | None, bool], tuple[Rule, ...]] = {}

    def kind(self, program: str | None) -> str | None:
        """`text` (prints only), a modelled program's name, `unmodelled`, or None (unknown)."""
        if program is None:
            return None
        if self._text_only.matches(program):
            return "text"
        return program if program in MODELS else "unmodelled"

    def for_word(self, program: str | None, written: bool) -> tuple[Rule, ...]:
        """The rules of one word (after the program) of a command running `program`."""
        kind = self.kind(program)
        key = (kind, written)
        found = self._cache.get(key)
        if found is None:
            slots = self._slots(kind, written)
            found = self._cache[key] = tuple(r for r in slots if r.language is not EMPTY)
        return found

    def _slots(self, kind: str | None, written: bool) -> tuple[Rule, ...]:
        """The rules in a fixed order: argument patterns, options, then the path rules."""
        if kind == "text":
            return ()
        paths = self._paths
        if kind == "unmodelled":
            return (self._argument, paths.denied)
        languages = program_languages(kind)

        def with_attached(rule: Rule, *effects: Effect, whole: bool = True) -> Rule:
            attached = (languages.attached(e, rule.language) for e in effects)
            own = rule.language if whole else EMPTY
            return Rule(rule.id, union(own, *attached), rule.explanation)

        return (
            self._argument,
            Rule("command.option", languages.runs, RUNS),
            Rule("command.option", languages.beneath, BENEATH),
            Rule("command.option", languages.named_inside, NAMED_INSIDE),
            *(with_attached(r, Effect.READS, Effect.WRITES) for r in paths.read),
            with_attached(paths.read_only, Effect.WRITES, whole=written),
        )

    def line_rules(self) -> tuple[Rule, ...]:
        """The same rules for the words of a command line (`command: "sort -o x"`), every
        program at once: a line breaks one when its first word is a program and some later
        word breaks that program's rule."""
        per_rule: dict[int, tuple[Rule, list[Lang]]] = {}
        for program in MODELS:
            if self.kind(program) == "text":
                continue
            for index, rule in enumerate(self._slots(program, may_write(program))):
                if index == 0:
                    continue  # the argument patterns: already a rule of every command line
                entry = per_rule.setdefault(index, (rule, []))
                entry[1].append(some_later_word(literal(program), rule.language))
        modelled = union(*(literal(p) for p in MODELS))
        others = intersect(complement(modelled), complement(self._text_only))
        lifted = [
            Rule(r.id, union(*languages), r.explanation) for r, languages in per_rule.values()
        ]
        unmodelled = some_later_word(others, self._paths.denied.language)
        lifted.append(Rule("filesystem.denied", unmodelled, self._paths.denied.explanation))
        return tuple(r for r in lifted if r.language is not EMPTY)
