"""Policy languages and texts in Z3: regular expressions, string literals and model values."""

from __future__ import annotations

import ctypes

import z3

from rustchain.domain.policy.regex import EPSILON, Lang, union

# Z3's strings are over code points up to this one; beyond it nothing can be a counterexample.
Z3_MAX_CODE = 0x2FFFF
_RE_SORT = z3.ReSort(z3.StringSort())


def z3_text(text: str) -> str:
    """A text as Z3 reads a string literal: backslash and non-ASCII escaped as `\\u{...}`."""
    return "".join(c if 32 <= ord(c) < 127 and c != "\\" else f"\\u{{{ord(c):x}}}" for c in text)


def string_value(text: str) -> z3.SeqRef:
    """The Z3 string constant of exactly this text."""
    return z3.StringVal(z3_text(text))


def model_text(value: z3.ExprRef) -> str:
    """The Python text of a Z3 string value, code point by code point (no escape guessing)."""
    context, ast = value.ctx_ref(), value.as_ast()
    length = z3.Z3_get_string_length(context, ast)
    buffer = (ctypes.c_uint * length)()
    z3.Z3_get_string_contents(context, ast, length, buffer)
    return "".join(chr(code) for code in buffer)


class RegexEncoder:
    """Turns languages into Z3 regular expressions, sharing the encoding of shared nodes."""

    def __init__(self) -> None:
        self._done: dict[Lang, z3.ReRef] = {}

    def encode(self, lang: Lang) -> z3.ReRef:
        """The Z3 regular expression of a language."""
        found = self._done.get(lang)
        if found is None:
            found = self._encode(lang)
            self._done[lang] = found
        return found

    def _chars(self, lang: Lang) -> z3.ReRef:
        ranges = lang.args[0]
        assert isinstance(ranges, tuple)
        parts = [
            z3.Range(z3_text(chr(low)), z3_text(chr(min(high, Z3_MAX_CODE))))
            for low, high in ranges
            if low <= Z3_MAX_CODE
        ]
        if not parts:
            return z3.Empty(_RE_SORT)
        return parts[0] if len(parts) == 1 else z3.Union(*parts)

    def _union(self, members: list[Lang]) -> z3.ReRef:
        # Left-factored (`10.*|127.*` as `1(0.*|27.*)`): z3 handles a trie far better than a
        # flat union of alternatives that share their beginnings.
        groups: dict[str, list[Lang]] = {}
        others: list[Lang] = []
        for member in members:
            split = _head_char(member)
            if split is None:
                others.append(member)
            else:
                groups.setdefault(split[0], []).append(split[1])
        parts = [self.encode(m) for m in others]
        for char, tails in sorted(groups.items()):
            head = z3.Re(string_value(char))
            tail = union(*tails)
            parts.append(head if tail is EPSILON else z3.Concat(head, self.encode(tail)))
        return parts[0] if len(parts) == 1 else z3.Union(*parts)

    def _concat(self, lang: Lang) -> z3.ReRef:
        items: list[Lang] = []
        node = lang
        while node.kind == "cat":
            head, node = node.args  # type: ignore[assignment]
            assert isinstance(head, Lang)
            items.append(head)
        items.append(node)
        encoded: list[z3.ReRef] = []
        text = ""
        for item in items:
            single = _single_char(item)
            if single is not None:
                text += single
                continue
            if text:
                encoded.append(z3.Re(string_value(text)))
                text = ""
            encoded.append(self.encode(item))
        if text:
            encoded.append(z3.Re(string_value(text)))
        return encoded[0] if len(encoded) == 1 else z3.Concat(*encoded)

    def _encode(self, lang: Lang) -> z3.ReRef:
        kind = lang.kind
        children = [a for a in lang.args if isinstance(a, Lang)]
        if kind == "empty":
            return z3.Empty(_RE_SORT)
        if kind == "eps":
            return z3.Re(z3.StringVal(""))
        if kind == "chars":
            return self._chars(lang)
        if kind == "cat":
            return self._concat(lang)
        if kind == "alt":
            return self._union(children)
        if kind == "and":
            return z3.Intersect(*(self.encode(c) for c in children))
        if kind == "not":
            return z3.Complement(self.encode(children[0]))
        if kind == "star":
            if children[0].kind == "chars" and children[0].args[0] == ((0, 0x10FFFF),):
                return z3.Full(_RE_SORT)
            return z3.Star(self.encode(children[0]))
        low, high = lang.args[1], lang.args[2]
        assert isinstance(low, int) and isinstance(high, int)
        return z3.Loop(self.encode(children[0]), low, high)


def _head_char(lang: Lang) -> tuple[str, Lang] | None:
    """A language as one fixed first character and the rest, when it starts that way."""
    single = _single_char(lang)
    if single is not None:
        return single, EPSILON
    if lang.kind == "cat":
        head, tail = lang.args
        assert isinstance(head, Lang) and isinstance(tail, Lang)
        first = _single_char(head)
        if first is not None:
            return first, tail
    return None


def _single_char(lang: Lang) -> str | None:
    if lang.kind != "chars":
        return None
    ranges = lang.args[0]
    assert isinstance(ranges, tuple)
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return chr(ranges[0][0])
    return None
