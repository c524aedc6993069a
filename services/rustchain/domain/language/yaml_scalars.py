"""YAML 1.2 core-schema scalars, as RustChain's serde_yaml reads them: `yes`/`no` stay text."""

from __future__ import annotations

import re

from rustchain.domain.language.source import Scalar

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?[0-9]+$")
_OCT = re.compile(r"^0o[0-7]+$")
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")

_TAG_PREFIX = "tag:yaml.org,2002:"

# First characters that no null, boolean or number can start with: such text is decided at once.
NOT_SPECIAL = frozenset("abcdeghijklmopqrsuvwxyzABCDEGHIJKLMOPQRSUVWXYZ_/")


def resolve_plain(text: str) -> Scalar:
    """The value of a plain (unquoted) scalar: null, boolean, number or text."""
    if text and text[0] in NOT_SPECIAL:
        return text  # cannot start a null, boolean or number: the common case, decided at once
    if _NULL.match(text):
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.match(text):
        return int(text)
    if _OCT.match(text):
        return int(text[2:], 8)
    if _HEX.match(text):
        return int(text[2:], 16)
    if _FLOAT.match(text):
        return float(text)
    if _INF.match(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.match(text):
        return float("nan")
    return text


def resolve_tagged(tag: str, text: str) -> Scalar:
    """The value of an explicitly tagged scalar (`!!str`, `!!int`...), or ValueError."""
    kind = tag.removeprefix(_TAG_PREFIX)
    if kind == "str":
        return text
    resolved = resolve_plain(text)
    kinds: dict[str, tuple[type, ...]] = {
        "int": (int,),
        "float": (int, float),
        "bool": (bool,),
        "null": (type(None),),
    }
    expected = kinds.get(kind)
    if expected is None:
        raise ValueError(f"unsupported YAML tag '{tag}'")
    if isinstance(resolved, bool) and kind != "bool":
        raise ValueError(f"'{text}' is not a valid !!{kind}")
    if not isinstance(resolved, expected):
        raise ValueError(f"'{text}' is not a valid !!{kind}")
    return float(resolved) if kind == "float" and resolved is not None else resolved
