"""The pieces rules are made of: a rule as a language, words of a command line, workspace paths."""

from __future__ import annotations

from dataclasses import dataclass

from rustchain.domain.policy.patterns import WHITE_SPACE, glob
from rustchain.domain.policy.regex import (
    ANYTHING,
    Lang,
    char_set,
    concat,
    intersect,
    literal,
    optional,
    plus,
    star,
    union,
)


@dataclass(frozen=True, eq=False)
class Rule:
    """A rule as the language of the values that break it."""

    id: str
    language: Lang
    explanation: str


WS = char_set(WHITE_SPACE)
WORD = plus(char_set(WHITE_SPACE, negate=True))
_SLASH = literal("/")
# Lexically, `a//b` and `a/./b` are `a/b`: separators absorb empty and `.` segments.
_SEP = concat(_SLASH, star(union(_SLASH, literal("./"))))
_START = star(union(_SLASH, literal("./")))
_END = star(union(_SLASH, literal("/.")))
_NOT_SLASH = char_set("/", negate=True)
# A real segment: neither empty nor `.` (written without complement, which solvers find costly).
_SEGMENT = union(
    concat(char_set("/.", negate=True), star(_NOT_SLASH)), concat(literal("."), plus(_NOT_SLASH))
)


def path_prefix(pattern: str) -> Lang:
    """Workspace paths that are, or are under, what the glob names (lexically canonical)."""
    segments = [s for s in pattern.split("/") if s not in ("", ".")]
    body: list[Lang] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            body.append(ANYTHING if last else optional(concat(ANYTHING, _SEP)))
            continue
        pattern_part = glob(segment, "/")
        wild = "*" in segment or "?" in segment
        body.append(intersect(pattern_part, _SEGMENT) if wild else pattern_part)
        if not last:
            body.append(_SEP)
    return concat(_START, *body, union(_END, concat(_SEP, ANYTHING)))


def first_word(command: str) -> str:
    """The program of a command line: its first word (split at ASCII white space)."""
    stripped = command.lstrip(WHITE_SPACE)
    end = 0
    while end < len(stripped) and stripped[end] not in WHITE_SPACE:
        end += 1
    return stripped[:end]


def command_words(command: str) -> list[str]:
    """The words of a command line, split at ASCII white space as the runner splits it."""
    words: list[str] = []
    current = ""
    for char in command:
        if char in WHITE_SPACE:
            if current:
                words.append(current)
            current = ""
        else:
            current += char
    return [*words, current] if current else words


def some_later_word(program: Lang, word: Lang) -> Lang:
    """Command lines whose first word is in `program` and some later word in `word`."""
    return concat(
        star(WS),
        intersect(WORD, program),
        WS,
        optional(concat(ANYTHING, WS)),
        intersect(WORD, word),
        optional(concat(WS, ANYTHING)),
    )


@dataclass(frozen=True)
class PathRules:
    """The rules a workspace path must not break: the last one only for paths written."""

    parent: Rule
    absolute: Rule
    denied: Rule
    read_only: Rule

    @property
    def read(self) -> tuple[Rule, Rule, Rule]:
        """The rules of a path read."""
        return (self.parent, self.absolute, self.denied)


def path_rules(denied_paths: list[str], read_only_paths: list[str]) -> PathRules:
    """The filesystem rules of a policy."""
    return PathRules(
        parent=Rule(
            "filesystem.workspace",
            concat(
                optional(concat(ANYTHING, _SLASH)),
                literal(".."),
                optional(concat(_SLASH, ANYTHING)),
            ),
            "may leave the workspace through a '..' segment",
        ),
        absolute=Rule(
            "filesystem.workspace",
            union(concat(_SLASH, ANYTHING), concat(ANYTHING, literal("\x00"), ANYTHING)),
            "may leave the workspace as an absolute path",
        ),
        denied=Rule(
            "filesystem.denied",
            union(*(path_prefix(p) for p in denied_paths)),
            "may reach a path the policy denies",
        ),
        read_only=Rule(
            "filesystem.read_only",
            union(*(path_prefix(p) for p in read_only_paths)),
            "may write to a read-only path",
        ),
    )
