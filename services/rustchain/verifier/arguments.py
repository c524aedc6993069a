"""The rules of each argument of a command step, from its program's model and its other words.

Which rules an argument must keep depends on the program (known from the command text, or from
each value a short enumeration allows) and on the words before and after it (`-o` makes the
next word a file written). A symbolic word may be several things: the solver says which.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from rustchain.domain.policy.command_rules import CommandRules
from rustchain.domain.policy.languages import Rule, command_words, first_word
from rustchain.domain.policy.obligations import Template
from rustchain.domain.policy.patterns import WHITE_SPACE
from rustchain.domain.policy.program_rules import written_words
from rustchain.domain.policy.regex import Lang
from rustchain.verifier.queries import MAX_ENUMERATED, OutcomeKind, QueryRunner

Candidate = tuple[dict[str, str], list[tuple[Rule, ...]]]


def argument_rules(
    commands: CommandRules, runner: QueryRunner, line: Template, arguments: Sequence[Template]
) -> list[Candidate]:
    """Per possible command text: the values of its symbols, and each argument's rules."""
    texts = _command_texts(runner, line)
    if texts is None:
        return [({}, _rules(commands, runner, _program(line), [None], arguments))]
    return [(values, _rules(commands, runner, *_split(text), arguments)) for values, text in texts]


def _split(text: str) -> tuple[str | None, list[Template | None]]:
    words = command_words(text)
    return (words[0] if words else ""), [Template((w,)) for w in words[1:]]


def _rules(
    commands: CommandRules,
    runner: QueryRunner,
    program: str | None,
    inline: list[Template | None],
    arguments: Sequence[Template],
) -> list[tuple[Rule, ...]]:
    kind = commands.kind(program)
    written = [True] * len(arguments)
    if kind not in ("text", "unmodelled"):

        def can(word: Template | None, language: Lang) -> bool:
            if word is None:
                return True
            outcome = runner.decide(word, Rule("probe", language, ""))
            return outcome.kind is not OutcomeKind.PROVEN

        written = written_words(kind, [*inline, *arguments], can)[len(inline) :]
    return [commands.for_word(program, w) for w in written]


def _command_texts(runner: QueryRunner, line: Template) -> list[tuple[dict[str, str], str]] | None:
    """Every text the command may be, when its symbols have a short list of values."""
    symbols = line.symbols
    choices = [runner.domain(s).values for s in symbols]
    finite = [c for c in choices if c is not None]
    if len(finite) != len(choices):
        return None
    count = 1
    for values in finite:
        count *= len(values)
    if count > MAX_ENUMERATED:
        return None
    texts = []
    for combination in itertools.product(*finite):
        chosen = {s.name: v for s, v in zip(symbols, combination, strict=True)}
        texts.append((chosen, line.substitute(chosen)))
    return texts


def _program(line: Template) -> str | None:
    """The program of a command line when it is known before the run: a whole literal word."""
    head = line.parts[0]
    if not isinstance(head, str):
        return None
    word = first_word(head)
    complete = line.is_concrete or len(head.lstrip(WHITE_SPACE)) > len(word)
    return word if word and complete else None
