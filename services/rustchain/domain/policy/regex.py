"""Regular languages over text: the one description of every policy rule.

A rule is a language of *violating* values. The verifier hands it to Z3 (`InRe`) and the runtime
checks run it here, on concrete values, with Brzozowski derivatives. Both interpret the same tree,
so what the verifier proves and what the runtime refuses cannot drift apart. Complement and
intersection are first-class, which regular expressions in Python are not.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

MAX_CODE: Final = 0x10FFFF
Ranges = tuple[tuple[int, int], ...]


class Lang:
    """A node of a regular language; built only through the functions below, so equal is same."""

    __slots__ = ("_derivatives", "args", "kind", "nullable")

    def __init__(self, kind: str, args: tuple[object, ...], nullable: bool) -> None:
        self.kind = kind
        self.args = args
        self.nullable = nullable
        self._derivatives: dict[str, Lang] = {}

    def __repr__(self) -> str:
        return f"{self.kind}{self.args!r}"

    def derive(self, char: str) -> Lang:
        """The language of the rests of this language's texts that start with `char`."""
        found = self._derivatives.get(char)
        if found is None:
            found = _derive(self, char)
            self._derivatives[char] = found
        return found

    def matches(self, text: str) -> bool:
        """Whether the whole text is in the language."""
        state = self
        for char in text:
            state = state.derive(char)
            if state is EMPTY:
                return False
        return state.nullable


_INTERNED: dict[tuple[object, ...], Lang] = {}
_PERMANENT: dict[tuple[object, ...], Lang] = {}
# A long-running verifier meets ever new texts; past this many nodes the table starts again.
# Nodes made before stay valid (equal languages may then be two nodes: slower, never wrong).
_MAX_INTERNED = 500_000


def _make(kind: str, args: tuple[object, ...], nullable: bool) -> Lang:
    # Children are keyed by identity; the interned parent keeps them alive, so ids stay theirs.
    key = (kind, *(id(a) if isinstance(a, Lang) else a for a in args))
    found = _INTERNED.get(key)
    if found is None:
        if len(_INTERNED) > _MAX_INTERNED:
            _INTERNED.clear()
            _INTERNED.update(_PERMANENT)
        found = Lang(kind, args, nullable)
        _INTERNED[key] = found
    return found


EMPTY: Final = _make("empty", (), False)
EPSILON: Final = _make("eps", (), True)


def _normal(ranges: Iterable[tuple[int, int]]) -> Ranges:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(r for r in ranges if r[0] <= r[1]):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return tuple(merged)


def chars(ranges: Iterable[tuple[int, int]]) -> Lang:
    """One character out of the given inclusive code-point ranges."""
    normal = _normal(ranges)
    return _make("chars", (normal,), False) if normal else EMPTY


def complement_ranges(ranges: Ranges) -> Ranges:
    """Every code point not in the ranges."""
    result: list[tuple[int, int]] = []
    start = 0
    for low, high in _normal(ranges):
        if low > start:
            result.append((start, low - 1))
        start = high + 1
    if start <= MAX_CODE:
        result.append((start, MAX_CODE))
    return tuple(result)


def char_set(text: str, negate: bool = False) -> Lang:
    """One of the characters of a text (or, negated, any other character)."""
    ranges = _normal((ord(c), ord(c)) for c in text)
    return chars(complement_ranges(ranges) if negate else ranges)


ANY_CHAR: Final = chars([(0, MAX_CODE)])


def literal(text: str) -> Lang:
    """Exactly this text."""
    result = EPSILON
    for char in reversed(text):
        result = concat(char_set(char), result)
    return result


def concat(*parts: Lang) -> Lang:
    """The texts made of one text of each part, in order."""
    result = EPSILON
    for part in reversed(parts):
        result = _concat2(part, result)
    return result


def _concat2(first: Lang, rest: Lang) -> Lang:
    if first is EMPTY or rest is EMPTY:
        return EMPTY
    if first is EPSILON:
        return rest
    if rest is EPSILON:
        return first
    if first.kind == "cat":
        head, tail = first.args
        assert isinstance(head, Lang) and isinstance(tail, Lang)
        return _concat2(head, _concat2(tail, rest))
    return _make("cat", (first, rest), first.nullable and rest.nullable)


def _flatten(kind: str, parts: Iterable[Lang]) -> list[Lang]:
    flat: dict[int, Lang] = {}
    for part in parts:
        members = part.args if part.kind == kind else (part,)
        for member in members:
            assert isinstance(member, Lang)
            flat[id(member)] = member
    return sorted(flat.values(), key=repr)


def union(*parts: Lang) -> Lang:
    """The texts of any of the parts."""
    members = [p for p in _flatten("alt", parts) if p is not EMPTY]
    if any(p is ANYTHING for p in members):
        return ANYTHING
    if not members:
        return EMPTY
    if len(members) == 1:
        return members[0]
    return _make("alt", tuple(members), any(p.nullable for p in members))


def intersect(*parts: Lang) -> Lang:
    """The texts in every part."""
    members = [p for p in _flatten("and", parts) if p is not ANYTHING]
    if any(p is EMPTY for p in members):
        return EMPTY
    if not members:
        return ANYTHING
    if len(members) == 1:
        return members[0]
    return _make("and", tuple(members), all(p.nullable for p in members))


def complement(part: Lang) -> Lang:
    """Every text not in the part."""
    if part.kind == "not":
        inner = part.args[0]
        assert isinstance(inner, Lang)
        return inner
    if part is EMPTY:
        return ANYTHING
    if part is ANYTHING:
        return EMPTY
    return _make("not", (part,), not part.nullable)


def star(part: Lang) -> Lang:
    """Any number of texts of the part, one after the other."""
    if part is EMPTY or part is EPSILON:
        return EPSILON
    if part.kind == "star":
        return part
    return _make("star", (part,), True)


ANYTHING: Final = star(ANY_CHAR)
_PERMANENT.update(_INTERNED)  # the constants above stay the one node of their language


def plus(part: Lang) -> Lang:
    """One or more texts of the part."""
    return concat(part, star(part))


def optional(part: Lang) -> Lang:
    """The part, or nothing."""
    return union(EPSILON, part)


def repeat(part: Lang, low: int, high: int | None) -> Lang:
    """Between `low` and `high` (None: no limit) texts of the part."""
    if high is None:
        return concat(*([part] * low), star(part))
    if high < low:
        return EMPTY
    if high == 0:
        return EPSILON
    return _make("loop", (part, low, high), low == 0 or part.nullable)


def _derive(lang: Lang, char: str) -> Lang:
    kind, args = lang.kind, lang.args
    if kind in ("empty", "eps"):
        return EMPTY
    if kind == "chars":
        code = ord(char)
        ranges = args[0]
        assert isinstance(ranges, tuple)
        return EPSILON if any(low <= code <= high for low, high in ranges) else EMPTY
    parts = [a for a in args if isinstance(a, Lang)]
    if kind == "cat":
        head, tail = parts
        first = _concat2(head.derive(char), tail)
        return union(first, tail.derive(char)) if head.nullable else first
    if kind == "alt":
        return union(*(p.derive(char) for p in parts))
    if kind == "and":
        return intersect(*(p.derive(char) for p in parts))
    if kind == "not":
        return complement(parts[0].derive(char))
    if kind == "star":
        return _concat2(parts[0].derive(char), lang)
    low, high = args[1], args[2]
    assert isinstance(low, int) and isinstance(high, int)
    return _concat2(parts[0].derive(char), repeat(parts[0], max(low - 1, 0), high - 1))


# Keyed by the node itself (identity): an id could be reused once a node is gone.
_REVERSED: dict[Lang, Lang] = {}


def reverse(lang: Lang) -> Lang:
    """The language of the texts of `lang` read backwards."""
    found = _REVERSED.get(lang)
    if found is not None:
        return found
    kind, args = lang.kind, lang.args
    parts = [a for a in args if isinstance(a, Lang)]
    if kind in ("empty", "eps", "chars"):
        result = lang
    elif kind == "cat":
        result = concat(reverse(parts[1]), reverse(parts[0]))
    elif kind == "alt":
        result = union(*(reverse(p) for p in parts))
    elif kind == "and":
        result = intersect(*(reverse(p) for p in parts))
    elif kind == "not":
        result = complement(reverse(parts[0]))
    elif kind == "star":
        result = star(reverse(parts[0]))
    else:
        low, high = args[1], args[2]
        assert isinstance(low, int) and isinstance(high, int)
        result = repeat(reverse(parts[0]), low, high)
    if len(_REVERSED) > _MAX_INTERNED:
        _REVERSED.clear()
    _REVERSED[lang] = result
    return result


def quotient(lang: Lang, prefix: str, suffix: str) -> Lang:
    """The texts `t` such that `prefix + t + suffix` is in the language."""
    state = lang
    for char in prefix:
        state = state.derive(char)
    if suffix and state is not EMPTY:
        backwards = reverse(state)
        for char in reversed(suffix):
            backwards = backwards.derive(char)
        state = reverse(backwards)
    return state
