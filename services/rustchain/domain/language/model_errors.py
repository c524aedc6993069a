"""Pydantic validation errors turned into positioned, compiler-style messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from rustchain.domain.language.diagnostics import DiagnosticSink
from rustchain.domain.language.mission import STEP_ID_PATTERN, VARIABLE_NAME_PATTERN
from rustchain.domain.language.source import Node, describe

Model = TypeVar("Model", bound=BaseModel)

_EXPECTED = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "int_parsing": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "none_required": "null",
}

PATTERN_NAMES = {
    STEP_ID_PATTERN: "an id of letters, digits, '_' and '-' that starts with a letter or '_' "
    "(at most 100 characters)",
    VARIABLE_NAME_PATTERN: "a name of letters, digits and '_' that starts with a letter or '_' "
    "(at most 64 characters)",
}


def _field_name(loc: Sequence[str | int]) -> str:
    for segment in reversed(loc):
        if isinstance(segment, str):
            return segment
    return "value"


def _locate(base: Node, loc: Sequence[str | int]) -> tuple[Node, int]:
    """The deepest node along loc, and how many loc segments it consumed."""
    node = base
    for depth, segment in enumerate(loc):
        child = node.child(segment)
        if child is None:
            return node, depth
        node = child
    return node, len(loc)


def _quote_hint(value: Any) -> str:
    if isinstance(value, bool):
        return f'; quote it if you mean the text: "{str(value).lower()}"'
    if isinstance(value, int | float):
        return f'; quote it if you mean the text: "{value}"'
    return ""


def _explain(error: ErrorDetails, field: str) -> str:
    kind, ctx, found = error["type"], error.get("ctx") or {}, error.get("input")
    if kind in _EXPECTED:
        hint = _quote_hint(found) if kind == "string_type" else ""
        return f"'{field}' expects {_EXPECTED[kind]}, found {describe(found)}{hint}"
    if kind == "literal_error":
        return f"'{field}' expects one of {ctx.get('expected')}, found {describe(found)}"
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "less_than_equal": ("at most", "le"),
        "greater_than": ("more than", "gt"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"'{field}' must be {words} {ctx.get(key)}, found {describe(found)}"
    if kind == "string_too_short":
        return f"'{field}' must not be empty"
    if kind == "string_too_long":
        return f"'{field}' must be at most {ctx.get('max_length')} characters long"
    if kind == "too_short":
        return f"'{field}' needs at least {ctx.get('min_length')} item(s)"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern"))
        rule = PATTERN_NAMES.get(pattern, f"text matching {pattern}")
        return f"'{field}' expects {rule}, found {describe(found)}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return f"'{field}': {str(error['msg']).lower()}, found {describe(found)}"


def validate_node(
    model: type[Model], data: Any, base: Node, sink: DiagnosticSink, where: str
) -> Model | None:
    """Validate data (the plain form of `base`) into a model; errors go to the sink, placed."""
    try:
        return model.model_validate(data)
    except ValidationError as failure:
        as_text = plain_scalars_as_text(failure, base, data)
        if as_text is not data:
            try:
                return model.model_validate(as_text)
            except ValidationError as second:
                failure = second
        report(failure, base, sink, where)
        return None


def plain_scalars_as_text(failure: ValidationError, base: Node, data: Any) -> Any:
    """The data with each plain YAML scalar written where text is expected read as its text.

    RustChain (serde_yaml) reads `version: 1.0` or `id: 1` as the text "1.0" or "1"; the value is
    rebuilt along each such path so that the shared plain tree is never changed.
    """
    patched = data
    for error in failure.errors(include_url=False):
        if error["type"] != "string_type":
            continue
        loc = error["loc"]
        node, consumed = _locate(base, loc)
        if consumed == len(loc) and node.plain_text is not None:
            patched = _replaced(patched, loc, node.plain_text)
    return patched


def _replaced(value: Any, loc: Sequence[str | int], text: str) -> Any:
    if not loc:
        return text
    head, rest = loc[0], loc[1:]
    if isinstance(value, dict) and head in value:
        return {**value, head: _replaced(value[head], rest, text)}
    if isinstance(value, list) and isinstance(head, int) and 0 <= head < len(value):
        return [*value[:head], _replaced(value[head], rest, text), *value[head + 1 :]]
    return value


def report(failure: ValidationError, base: Node, sink: DiagnosticSink, where: str) -> None:
    """Each error of a validation failure, placed at the node it concerns; unions merged."""
    grouped: dict[tuple[int, str], list[ErrorDetails]] = {}
    order: list[tuple[int, str, Node, Sequence[str | int]]] = []
    for error in failure.errors(include_url=False):
        loc = error["loc"]
        node, consumed = _locate(base, loc)
        if error["type"] == "missing":
            sink.error(node.position, f"missing key '{_field_name(loc)}' in {where}")
            continue
        field = _field_name(loc[:consumed]) if consumed else _field_name(loc)
        key = (id(node), field)
        if key not in grouped:
            grouped[key] = []
            order.append((id(node), field, node, loc))
        grouped[key].append(error)
    for node_id, field, node, _ in order:
        errors = grouped[(node_id, field)]
        expected = [_EXPECTED[e["type"]] for e in errors if e["type"] in _EXPECTED]
        if len(errors) > 1 and len(expected) == len(errors):
            choices = " or ".join(dict.fromkeys(expected))
            found = describe(errors[0].get("input"))
            sink.error(node.position, f"'{field}' expects {choices}, found {found}")
            continue
        meaningful = [e for e in errors if e["type"] not in _EXPECTED] or errors
        sink.error(node.position, _explain(meaningful[0], field))
