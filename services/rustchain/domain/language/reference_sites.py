"""Finding references in a mission's source tree, placing them exactly, and naming bad ones."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rustchain.domain.language.diagnostics import Position
from rustchain.domain.language.references import Reference, UnknownReference, scan
from rustchain.domain.language.secret_refs import SECRETS_NAMESPACE
from rustchain.domain.language.source import Node, NodeKind, SourceDocument


def references_in(
    root: Node, ids: dict[str, Any], variables: dict[str, Any]
) -> Iterator[tuple[Node, Reference | UnknownReference]]:
    """Every reference in the text values under a node, with the node it is written in."""
    stack = [root]
    while stack:
        node = stack.pop()
        if node.kind is NodeKind.MAPPING:
            stack.extend(reversed(node.mapping.values()))
        elif node.kind is NodeKind.SEQUENCE:
            stack.extend(reversed(node.items))
        elif isinstance(node.value, str):
            for found in scan(node.value, ids, variables):
                yield node, found


def reference_position(
    document: SourceDocument, node: Node, found: Reference | UnknownReference
) -> Position:
    """Where the reference is written: exact when the raw text holds it verbatim."""
    if node.span is None:
        return node.position
    start, end = node.span
    earlier = node.value.count(found.text, 0, found.offset)
    raw_offset = start - 1
    for _ in range(earlier + 1):
        raw_offset = document.text.find(found.text, raw_offset + 1, end)
        if raw_offset < 0:
            return node.position
    return document.lines.position(raw_offset)


def unknown_message(found: UnknownReference) -> str:
    """What to say of a reference that names nothing."""
    if found.name == SECRETS_NAMESPACE:
        return (
            f"bad secret reference {found.text}: a secret's name is a letter or '_', then"
            " letters, digits or '_' (as in {secrets.API_KEY})"
        )
    if found.suggestion is not None:
        return (
            f"unknown reference {found.text}: no step or variable is named '{found.name}'; "
            f"did you mean '{found.suggestion}'?"
        )
    return f"unknown reference {found.text}: no step is named '{found.name}'"
