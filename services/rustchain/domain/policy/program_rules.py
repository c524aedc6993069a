"""Program models as languages of single words, and which words of an argv may be written.

GNU `getopt_long` reads `-uo/x` as `-u -o /x`, `-o/x` and `-o /x` alike, `--out=/x` and `--out /x`
as `--output` (any unambiguous prefix of a long option), and keeps reading options after operands
until `--`. Each language here is a superset of the words that use an option that way: every
prefix of a long name counts (GNU takes only unambiguous ones), and a cluster may hold any
letter or digit but those that take a value (these programs exit on an unknown option). Supersets
make the verifier refuse more, never less.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

from rustchain.domain.policy.program_models import MODELS, Effect, Operands, Option, ProgramModel
from rustchain.domain.policy.regex import (
    ANY_CHAR,
    ANYTHING,
    EMPTY,
    EPSILON,
    Lang,
    char_set,
    complement,
    concat,
    intersect,
    literal,
    optional,
    plus,
    star,
    union,
)

# A word that getopt reads as options: `-` then at least one character (`-` alone is stdin).
OPTION_WORD = concat(literal("-"), plus(ANY_CHAR))
NOT_OPTION_WORD = complement(OPTION_WORD)
END_OF_OPTIONS = literal("--")
_NON_EMPTY = plus(ANY_CHAR)
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _long_prefixes(name: str) -> Lang:
    """`--output` and every shorter prefix of it down to `--o`."""
    tail = EPSILON
    for char in reversed(name[3:]):
        tail = optional(concat(literal(char), tail))
    return concat(literal(name[:3]), tail)


@dataclass(frozen=True)
class ProgramLanguages:
    """Single-word languages of one program's model."""

    runs: Lang  # words that use an option running a program
    beneath: Lang  # words that use an option reaching beneath the operands
    named_inside: Lang  # words that use an option reading files named in a file
    expects_write: Lang  # words after which the next word is a file written
    model: ProgramModel | None  # None: any program of the models

    def attached(self, effect: Effect, value: Lang) -> Lang:
        """Words that carry an option of that effect with its value in `value`."""
        return _attached(self.model, effect, value)


class _Forms:
    """The word forms of a model's options."""

    def __init__(self, model: ProgramModel | None) -> None:
        self.find = model is not None and model.syntax == "find"
        valued = "" if model is None else _value_shorts(model)
        # A cluster: `-`, then option letters that take no value (a letter the program does not
        # know ends it: these programs print their usage and exit on an unknown option).
        letters = char_set("".join(c for c in _LETTERS if c not in valued))
        self.cluster = concat(literal("-"), star(letters))

    def _whole(self, name: str) -> bool:
        """Whether the name is only ever written as a whole word (`find`'s `-exec`)."""
        return self.find or (not name.startswith("--") and len(name) > 2)

    def uses(self, name: str) -> Lang:
        """Words that use the option, with or without a value."""
        if self._whole(name):
            return literal(name)
        if name.startswith("--"):
            return concat(_long_prefixes(name), optional(concat(literal("="), ANYTHING)))
        return concat(self.cluster, literal(name[1]), ANYTHING)

    def attached(self, name: str, value: Lang) -> Lang:
        """Words that carry the option and its value in `value`."""
        if self._whole(name):
            return EMPTY
        if name.startswith("--"):
            return concat(_long_prefixes(name), literal("="), value)
        return concat(self.cluster, literal(name[1]), intersect(value, _NON_EMPTY))

    def split(self, name: str) -> Lang:
        """Words after which the next word is the option's value."""
        if self._whole(name):
            return literal(name)
        if name.startswith("--"):
            return _long_prefixes(name)
        return concat(self.cluster, literal(name[1]))


def _value_shorts(model: ProgramModel) -> str:
    return "".join(
        name[1]
        for option in model.options
        if option.value
        for name in option.names
        if len(name) == 2 and name != "--"
    )


def _options(model: ProgramModel | None) -> list[tuple[_Forms, Option]]:
    models = list(MODELS.values()) if model is None else [model]
    forms = _Forms(None) if model is None else None
    return [(forms or _Forms(m), option) for m in models for option in m.options]


def _attached(model: ProgramModel | None, effect: Effect, value: Lang) -> Lang:
    return union(
        *(
            forms.attached(name, value)
            for forms, option in _options(model)
            if option.effect is effect and option.value
            for name in option.names
        )
    )


@cache
def program_languages(program: str | None) -> ProgramLanguages:
    """The languages of a modelled program; None: of any of them (the program is not known)."""
    model = None if program is None else MODELS[program]
    options = _options(model)

    def uses(effect: Effect) -> Lang:
        return union(
            *(
                forms.uses(name)
                for forms, option in options
                if option.effect is effect
                for name in option.names
            )
        )

    expects = union(
        *(
            forms.split(name)
            for forms, option in options
            if option.effect is Effect.WRITES and option.value
            for name in option.names
        )
    )
    return ProgramLanguages(
        uses(Effect.RUNS), uses(Effect.BENEATH), uses(Effect.NAMED_INSIDE), expects, model
    )


Word = TypeVar("Word")
CanBe = Callable[[Word, Lang], bool]


def written_words(program: str | None, words: Sequence[Word], can: CanBe[Word]) -> list[bool]:
    """For each word of an argv (after the program), whether it may name a file written.

    `can(word, language)` says whether the word may be in the language: exactly for a known
    word, by a solver (or yes) for a symbolic one.
    """
    if program is None:
        return [True] * len(words)
    languages = program_languages(program)
    model = MODELS[program]
    count = len(words)
    expects = languages.expects_write
    after_option = [expects is not EMPTY and can(w, expects) for w in words]
    written = [index > 0 and after_option[index - 1] for index in range(count)]
    if model.operands is Operands.WRITE:
        return [True] * count
    if model.operands not in (Operands.LAST_WRITTEN, Operands.SECOND_WRITTEN):
        return written
    option = [can(w, OPTION_WORD) for w in words]
    ended = [can(w, END_OF_OPTIONS) for w in words]
    may_operand = [can(w, NOT_OPTION_WORD) or any(ended[:i]) for i, w in enumerate(words)]
    # An option, or the value of the option before it (any option may take one).
    may_not = [option[i] or (i > 0 and option[i - 1]) for i in range(count)]
    for index in range(count):
        if not may_operand[index]:
            continue
        if model.operands is Operands.LAST_WRITTEN:
            last = all(may_not[index + 1 :])
        else:
            before = range(index)
            certain = sum(1 for j in before if may_operand[j] and not may_not[j])
            last = certain <= 1 and any(may_operand[j] for j in before)
        written[index] = written[index] or last
    return written


def concrete_can(word: str | None, language: Lang) -> bool:
    """`can` for known words (None: a word not known, which may be anything)."""
    return word is None or language.matches(word)
