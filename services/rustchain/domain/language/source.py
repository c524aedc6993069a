"""The source tree of a mission file: YAML/JSON values that remember where they were written."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from enum import Enum
from typing import Any

from rustchain.domain.language.diagnostics import Position

Scalar = str | int | float | bool | None
NO_KEYS: dict[str, Position] = {}


class NodeKind(Enum):
    """The three shapes a YAML value takes."""

    MAPPING = "mapping"
    SEQUENCE = "sequence"
    SCALAR = "scalar"


@dataclass(slots=True, eq=False)
class Node:
    """A value with its position; mappings also keep where each key was written."""

    kind: NodeKind
    position: Position
    value: Any
    # Only mappings have keys; they get their own dict, every other node shares NO_KEYS.
    key_positions: dict[str, Position]
    # The plain Python value (dicts, lists, scalars), built alongside the tree as it is composed.
    plain: Any
    # Raw character span of a string scalar, to place references found inside it exactly.
    span: tuple[int, int] | None = None
    # Number of nodes this value expands to, aliases included: the guard against YAML bombs.
    size: int = 1
    # The text of a plain YAML scalar read as a number, boolean or null (`1.0`, `yes`... `true`):
    # RustChain (serde_yaml) reads such a scalar as text where a text is expected, so do we.
    plain_text: str | None = None

    @property
    def mapping(self) -> dict[str, Node]:
        """The entries of a mapping node."""
        assert self.kind is NodeKind.MAPPING
        result: dict[str, Node] = self.value
        return result

    @property
    def items(self) -> list[Node]:
        """The items of a sequence node."""
        assert self.kind is NodeKind.SEQUENCE
        result: list[Node] = self.value
        return result

    def to_plain(self) -> Any:
        """The value as plain Python data (dicts, lists, scalars); shared, not to be changed."""
        return self.plain

    def child(self, key: str | int) -> Node | None:
        """The entry at a key (mapping) or index (sequence), if there is one."""
        if self.kind is NodeKind.MAPPING and isinstance(key, str):
            found: Node | None = self.value.get(key)
            return found
        if self.kind is NodeKind.SEQUENCE and isinstance(key, int) and 0 <= key < len(self.value):
            item: Node = self.value[key]
            return item
        return None


def describe(value: Any) -> str:
    """How a value reads in an error message: 'a list', 'the number 1.0', ..."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the text {shown!r}" if value else "an empty text"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


class LineIndex:
    """Turns character offsets in a text into line and column positions."""

    def __init__(self, text: str) -> None:
        starts = [0]
        find = text.find
        index = find("\n")
        while index >= 0:
            starts.append(index + 1)
            index = find("\n", index + 1)
        self._starts = starts

    def position(self, offset: int) -> Position:
        """The position of the character at `offset`."""
        line = bisect.bisect_right(self._starts, offset) - 1
        return Position(line + 1, offset - self._starts[line] + 1)


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """A parsed mission file: its root node and the text it came from."""

    file: str
    text: str
    root: Node
    lines: LineIndex
