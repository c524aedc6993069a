"""Globs and Python regular expressions turned into `policy_regex` languages."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from rustchain.domain.policy.regex import (
    ANY_CHAR,
    ANYTHING,
    EPSILON,
    MAX_CODE,
    Lang,
    chars,
    complement_ranges,
    concat,
    literal,
    repeat,
    star,
    union,
)

# The parser behind `re`: the patterns we translate are exactly those Python compiles.
_sre: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

WHITE_SPACE = " \t\n\r\x0b\x0c"


class PatternError(ValueError):
    """A pattern that cannot be used as a policy rule exactly."""


def glob(pattern: str, star_excludes: str = "", ignore_case: bool = False) -> Lang:
    """A glob: `*` a run of characters but `star_excludes`, `?` one, `**` anything."""
    one = chars(complement_ranges(tuple((ord(c), ord(c)) for c in star_excludes)))
    parts: list[Lang] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            parts.append(union(EPSILON, concat(ANYTHING, literal("/"))))
            index += 3
            continue
        if pattern.startswith("**", index):
            parts.append(ANYTHING)
            index += 2
            continue
        if char == "*":
            parts.append(star(one))
        elif char == "?":
            parts.append(one)
        elif ignore_case and char.lower() != char.upper():
            parts.append(union(literal(char.lower()), literal(char.upper())))
        else:
            parts.append(literal(char))
        index += 1
    return concat(*parts)


def any_glob(patterns: list[str], star_excludes: str = "", ignore_case: bool = False) -> Lang:
    """Texts matching any of the globs."""
    return union(*(glob(p, star_excludes, ignore_case) for p in patterns))


@cache
def _category_ranges(name: str) -> tuple[tuple[int, int], ...]:
    tests = {
        "DIGIT": str.isdecimal,
        "WORD": lambda c: c.isalnum() or c == "_",
        "SPACE": str.isspace,
    }
    test = tests[name]
    ranges: list[tuple[int, int]] = []
    for code in range(MAX_CODE + 1):
        if test(chr(code)):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return tuple(ranges)


def _category(code: Any) -> tuple[tuple[int, int], ...]:
    name = str(code).removeprefix("CATEGORY_")
    negated = name.startswith("NOT_")
    base = _category_ranges(name.removeprefix("NOT_").removeprefix("UNI_"))
    return complement_ranges(base) if negated else base


class _Translator:
    """Walks a parsed Python pattern; `exact` turns false where only a superset is expressible."""

    def __init__(self, dotall: bool) -> None:
        self.exact = True
        self.dotall = dotall

    def sequence(self, items: Any) -> Lang:
        return concat(*(self.item(op, value) for op, value in items))

    def char_class(self, items: Any) -> Lang:
        ranges: list[tuple[int, int]] = []
        negate = False
        for op, value in items:
            if op is _c.NEGATE:
                negate = True
            elif op is _c.LITERAL:
                ranges.append((value, value))
            elif op is _c.RANGE:
                ranges.append(value)
            elif op is _c.CATEGORY:
                ranges.extend(_category(value))
            else:
                raise PatternError(f"unsupported character class item {op}")
        normal = tuple(ranges)
        return chars(complement_ranges(normal) if negate else normal)

    def item(self, op: Any, value: Any) -> Lang:
        if op is _c.LITERAL:
            return literal(chr(value))
        if op is _c.NOT_LITERAL:
            return chars(complement_ranges(((value, value),)))
        if op is _c.ANY:
            return ANY_CHAR if self.dotall else chars(complement_ranges(((10, 10),)))
        if op is _c.IN:
            return self.char_class(value)
        if op is _c.BRANCH:
            return union(*(self.sequence(branch) for branch in value[1]))
        if op is _c.SUBPATTERN:
            return self.sequence(value[-1])
        if op is _c.ATOMIC_GROUP:
            return self.sequence(value)
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
            low, high, inner = value
            return repeat(self.sequence(inner), low, None if high is _c.MAXREPEAT else high)
        if op is _c.AT:
            # Anchors only ever restrict; as nothing, the language is a superset.
            self.exact = False
            return EPSILON
        # Back-references and look-arounds: any text is a superset of what they allow.
        self.exact = False
        return ANYTHING if op is _c.GROUPREF else EPSILON


def regex(pattern: str) -> tuple[Lang, bool]:
    """The texts `re.fullmatch(pattern, text)` accepts, or a superset; and whether it is exact."""
    parsed = _sre.parse(pattern)
    flags = parsed.state.flags
    if flags & (_c.SRE_FLAG_IGNORECASE | _c.SRE_FLAG_LOCALE | _c.SRE_FLAG_MULTILINE):
        return ANYTHING, False
    items = list(parsed)
    # Under fullmatch, ^ at the start and $ at the end match exactly where the text does.
    if items and items[0] == (_c.AT, _c.AT_BEGINNING):
        items = items[1:]
    if items and items[-1] in ((_c.AT, _c.AT_END), (_c.AT, _c.AT_END_STRING)):
        items = items[:-1]
    translator = _Translator(dotall=bool(flags & _c.SRE_FLAG_DOTALL))
    try:
        result = translator.sequence(items)
    except PatternError:
        return ANYTHING, False
    return result, translator.exact


def exact_regex(pattern: str) -> Lang:
    """A policy pattern: refused unless its language is expressible exactly."""
    lang, exact = regex(pattern)
    if not exact:
        raise PatternError(
            "use only literals, classes, groups, alternation and repetition "
            "(no anchors but ^ and $ at the ends, flags, look-arounds or back-references)"
        )
    return lang
