"""Keys a mission does not know: warnings, with the known key they look like a misspelling of."""

from __future__ import annotations

import functools
import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from rustchain.domain.language.diagnostics import DiagnosticSink
from rustchain.domain.language.source import Node, NodeKind
from rustchain.domain.language.suggest import closest


def _nested_model(annotation: Any) -> tuple[str, type[BaseModel]] | None:
    """Whether a field holds a model, a dict of models or a list of models."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            found = _nested_model(arg)
            if found:
                return found
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return ("model", annotation)
    args = get_args(annotation)
    if origin is dict and len(args) == 2:
        inner = _nested_model(args[1])
        return ("dict", inner[1]) if inner and inner[0] == "model" else None
    if origin is list and args:
        inner = _nested_model(args[0])
        return ("list", inner[1]) if inner and inner[0] == "model" else None
    if hasattr(annotation, "__metadata__"):
        return _nested_model(get_args(annotation)[0])
    return None


@functools.cache
def _model_keys(
    model: type[BaseModel],
) -> tuple[frozenset[str], dict[str, tuple[str, type[BaseModel]]]]:
    """The keys a model accepts (aliases where set), and which of them hold nested models."""
    fields = model.model_fields
    known = frozenset(f.alias or name for name, f in fields.items())
    nested = {}
    for name, field in fields.items():
        found = _nested_model(field.annotation)
        if found is not None:
            nested[field.alias or name] = found
    return known, nested


def report_unknown_keys(
    node: Node,
    model: type[BaseModel],
    sink: DiagnosticSink,
    where: str,
    *,
    also_allowed: tuple[str, ...] = (),
) -> None:
    """Each unknown key is a warning, naming the known key it is closest to.

    RustChain (serde) ignores keys it does not know and ran missions that carry `tags`, `author`,
    `llm_config` or `max_parallel`; they keep loading here. The "did you mean" shows a misspelt key
    (`depends-on`) that would silently change what the mission does; `rustchain validate --strict`
    turns every warning into an error for teams that want that.
    """
    if node.kind is not NodeKind.MAPPING:
        return
    known, nested_models = _model_keys(model)
    if all(key in known for key in node.key_positions) and not nested_models:
        return
    allowed = known | set(also_allowed)
    for key, key_position in node.key_positions.items():
        if key not in allowed:
            suggestion = closest(key, allowed)
            hint = f"; did you mean '{suggestion}'?" if suggestion else ""
            sink.warning(key_position, f"unknown key '{key}' in {where} is ignored{hint}")
            continue
        if key in also_allowed:
            continue
        nested = nested_models.get(key)
        value = node.mapping[key]
        if nested is None:
            continue
        shape, sub_model = nested
        inner_where = f"'{key}'"
        if shape == "model":
            report_unknown_keys(value, sub_model, sink, inner_where)
        elif shape == "dict" and value.kind is NodeKind.MAPPING:
            for child in value.mapping.values():
                report_unknown_keys(child, sub_model, sink, inner_where)
        elif shape == "list" and value.kind is NodeKind.SEQUENCE:
            for child in value.items:
                report_unknown_keys(child, sub_model, sink, inner_where)
