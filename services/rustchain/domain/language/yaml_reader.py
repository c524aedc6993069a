"""Reads YAML and JSON mission files into position-aware source trees, within fixed bounds.

PyYAML's libyaml event parser does the scanning; composing the tree is ours so that every value
keeps its position, duplicate keys are caught, and nesting depth and alias expansion are bounded
(deeply nested or 'billion laughs' input gets an error, not a stack overflow or exhausted memory).
Plain scalars are resolved with the YAML 1.2 core schema, as RustChain's serde_yaml does, so
`yes`/`no`/`on`/`off` stay text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from rustchain.domain.language.diagnostics import START, DiagnosticSink, Position
from rustchain.domain.language.source import (
    NO_KEYS,
    LineIndex,
    Node,
    NodeKind,
    Scalar,
    SourceDocument,
)
from rustchain.domain.language.yaml_scalars import NOT_SPECIAL, resolve_plain, resolve_tagged

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """Bounds that keep hostile input cheap to refuse."""

    max_bytes: int = 32 * 1024 * 1024
    max_depth: int = 100
    max_nodes: int = 5_000_000


class _ReadingAbortedError(Exception):
    """Raised inside the composer once an error makes the rest of the file meaningless."""


class _Composer:
    """Builds the node tree from parser events, keeping positions and enforcing limits."""

    def __init__(
        self, sink: DiagnosticSink, lines: LineIndex, limits: ReadLimits, *, yaml_text: bool = True
    ) -> None:
        self.sink = sink
        # YAML reads a plain `1.0` as text where text is expected (serde_yaml); JSON never does.
        self.yaml_text = yaml_text
        self.lines = lines
        self.limits = limits
        self.stack: list[Node] = []
        self.pending_keys: list[tuple[str, Position] | None] = []
        self.anchors: dict[str, Node] = {}
        self.root: Node | None = None
        self.documents = 0

    def _pos(self, mark: Any) -> Position:
        return Position(mark.line + 1, mark.column + 1)

    def fail(self, position: Position, message: str) -> None:
        self.sink.error(position, message)
        raise _ReadingAbortedError

    def run(self, events: Iterable[Any]) -> None:
        """Compose every event; plain and quoted text scalars, by far the most common, inline."""
        scalar_event, scalar_kind, sequence_kind = (
            yaml.ScalarEvent,
            NodeKind.SCALAR,
            NodeKind.SEQUENCE,
        )
        stack, pending_keys, max_nodes = self.stack, self.pending_keys, self.limits.max_nodes
        for event in events:
            if type(event) is not scalar_event or event.tag is not None or event.anchor is not None:
                self.feed(event)
                continue
            text: str = event.value
            if not event.style and not (text and text[0] in NOT_SPECIAL):
                self._scalar(event)
                continue
            mark: Any = event.start_mark
            end: Any = event.end_mark
            node = Node(scalar_kind, Position(mark.line + 1, mark.column + 1), text, NO_KEYS, text)
            node.span = (mark.index, end.index)
            if not stack:
                self.root = node
                continue
            parent = stack[-1]
            parent.size += 1
            if parent.size > max_nodes:
                self._attach(node)  # reports the expansion error
            elif parent.kind is sequence_kind:
                parent.value.append(node)
                parent.plain.append(text)
            else:
                pending = pending_keys[-1]
                if pending is None:
                    pending_keys[-1] = self._key(parent, node)
                else:
                    pending_keys[-1] = None
                    key, key_position = pending
                    if key:
                        parent.value[key] = node
                        parent.plain[key] = text
                        parent.key_positions[key] = key_position

    def feed(self, event: Any) -> None:
        kind = type(event)
        if kind is yaml.ScalarEvent:
            self._scalar(event)
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            self._start(event)
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            node = self.stack.pop()
            self.pending_keys.pop()
            self._attach(node)
        elif kind is yaml.AliasEvent:
            self._alias(event)
        elif kind is yaml.DocumentStartEvent:
            self.documents += 1
            if self.documents > 1:
                self.fail(
                    self._pos(event.start_mark),
                    "expected one mission per file, found a second YAML document here",
                )

    def _start(self, event: Any) -> None:
        if len(self.stack) >= self.limits.max_depth:
            self.fail(
                self._pos(event.start_mark),
                f"nesting deeper than {self.limits.max_depth} levels; a mission needs far fewer",
            )
        if type(event) is yaml.MappingStartEvent:
            node = Node(NodeKind.MAPPING, self._pos(event.start_mark), {}, {}, {})
        else:
            node = Node(NodeKind.SEQUENCE, self._pos(event.start_mark), [], NO_KEYS, [])
        if event.anchor is not None:
            self.anchors[event.anchor] = node
        self.stack.append(node)
        self.pending_keys.append(None)

    def _scalar(self, event: Any) -> None:
        mark = event.start_mark
        position = Position(mark.line + 1, mark.column + 1)
        text: str = event.value
        tag = event.tag
        value: Scalar = text
        if tag is None:
            if not event.style:
                try:
                    value = resolve_plain(text)
                except ValueError:
                    self.fail(
                        position, "expected a number of at most 4300 digits, found a longer one"
                    )
        elif tag != "!":
            try:
                value = resolve_tagged(tag, text)
            except ValueError as error:
                self.fail(position, str(error))
        if type(value) is float and not math.isfinite(value):
            self.fail(position, f"expected a finite number, found '{text}'")
        node = Node(NodeKind.SCALAR, position, value, NO_KEYS, value)
        if type(value) is str:
            node.span = (mark.index, event.end_mark.index)
        elif tag is None and not event.style and self.yaml_text:
            node.plain_text = text
        if event.anchor is not None:
            self.anchors[event.anchor] = node
        self._attach(node)

    def _alias(self, event: Any) -> None:
        node = self.anchors.get(event.anchor)
        if node is None:
            self.fail(self._pos(event.start_mark), f"unknown alias '*{event.anchor}'")
        assert node is not None
        self._attach(node, alias_position=self._pos(event.start_mark))

    def _attach(self, node: Node, alias_position: Position | None = None) -> None:
        if not self.stack:
            self.root = node
            return
        parent = self.stack[-1]
        parent.size += node.size
        if parent.size > self.limits.max_nodes:
            self.fail(
                alias_position or node.position,
                f"the document expands to more than {self.limits.max_nodes:,} values "
                "(through aliases?); refusing to expand it",
            )
        if parent.kind is NodeKind.SEQUENCE:
            parent.value.append(node)
            parent.plain.append(node.plain)
            return
        pending = self.pending_keys[-1]
        if pending is None:
            self.pending_keys[-1] = self._key(parent, node)
            return
        self.pending_keys[-1] = None
        key, key_position = pending
        if key:
            parent.value[key] = node
            parent.plain[key] = node.plain
            parent.key_positions[key] = key_position

    def _key(self, parent: Node, node: Node) -> tuple[str, Position]:
        """Check a mapping key; an empty name marks a key whose value is to be dropped."""
        if node.kind is not NodeKind.SCALAR:
            self.sink.error(node.position, f"expected a text key, found a {node.kind.value}")
            return ("", node.position)
        key = node.value
        if not isinstance(key, str):
            key = "null" if key is None else str(key).lower() if isinstance(key, bool) else str(key)
        if key == "<<":
            self.sink.error(
                node.position, "YAML merge keys ('<<') are not supported; write the keys out"
            )
            return ("", node.position)
        if key in parent.value:
            first = parent.key_positions[key]
            self.sink.error(
                node.position,
                f"duplicate key '{key}' (first written at {first.line}:{first.column})",
            )
            return ("", node.position)
        return (key, node.position)


def _events(text: str) -> Iterator[Any]:
    """libyaml's events, one C call each (yaml.parse makes two, through a generator)."""
    loader = _Loader(text)
    try:
        get_event = loader.get_event
        while True:
            event = get_event()
            if event is None or type(event) is yaml.StreamEndEvent:
                return
            yield event
    finally:
        loader.dispose()


def _size(count: int) -> str:
    if count >= 1_048_576:
        return f"{count / 1_048_576:.1f} MiB".replace(".0 MiB", " MiB")
    if count >= 1024:
        return f"{count / 1024:.1f} KiB".replace(".0 KiB", " KiB")
    return f"{count} bytes"


def _decode(data: bytes, sink: DiagnosticSink) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        good = data[: error.start].decode("utf-8", errors="replace")
        position = LineIndex(good).position(len(good))
        sink.error(
            position,
            f"expected UTF-8 text, found the byte 0x{data[error.start]:02x} "
            "(is this a binary file?)",
        )
        return None
    # YAML breaks lines at \r too; one spelling of the line break keeps our line numbers and
    # libyaml's in step (and matches what editors show).
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _character_at(text: str, position: Position) -> str:
    lines = text.split("\n", position.line)
    if not 1 <= position.line <= len(lines):
        return ""
    line = lines[position.line - 1]
    return line[position.column - 1] if 0 < position.column <= len(line) else ""


def _yaml_error_message(error: yaml.MarkedYAMLError, text: str, position: Position) -> str:
    problem = (error.problem or "invalid YAML").strip()
    if _character_at(text, position) == "\t":
        return "found a tab character; YAML indents with spaces only"
    message = f"invalid YAML: {problem}"
    mark = error.context_mark
    if error.context and mark is not None and mark is not error.problem_mark:
        message += f" ({error.context} at {mark.line + 1}:{mark.column + 1})"
    if "block" in (error.context or ""):
        message += "; check the indentation of this line"
    return message


def _check_json(text: str, sink: DiagnosticSink) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        sink.error(Position(error.lineno, error.colno), f"invalid JSON: {error.msg}")
        return False
    except RecursionError:
        sink.error(START, "invalid JSON: nested too deeply")
        return False
    return True


def read_source(
    data: bytes, file: str, sink: DiagnosticSink, limits: ReadLimits | None = None
) -> SourceDocument | None:
    """Parse a mission file's bytes; on failure the sink says why and None is returned."""
    limits = limits or ReadLimits()
    if len(data) > limits.max_bytes:
        sink.error(
            START,
            f"the file is {_size(len(data))}; missions are limited to {_size(limits.max_bytes)}",
        )
        return None
    text = _decode(data, sink)
    if text is None:
        return None
    is_json = file.lower().endswith(".json")
    if is_json and not _check_json(text, sink):
        return None
    lines = LineIndex(text)
    composer = _Composer(sink, lines, limits, yaml_text=not is_json)
    # JSON allows tabs where YAML does not; outside strings they are only white space and
    # inside strings JSON forbids them raw, so a one-for-one swap keeps every column.
    parse_text = text.replace("\t", " ") if is_json else text
    try:
        composer.run(_events(parse_text))
    except _ReadingAbortedError:
        return None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        position = Position(mark.line + 1, mark.column + 1) if mark is not None else START
        sink.error(position, _yaml_error_message(error, text, position))
        return None
    except yaml.reader.ReaderError as error:
        code = ord(error.character) if isinstance(error.character, str) else error.character
        sink.error(
            lines.position(error.position),
            f"expected text, found the control character U+{code:04X}, which YAML does not allow",
        )
        return None
    except yaml.YAMLError as error:
        sink.error(START, f"invalid YAML: {error}")
        return None
    if composer.root is None:
        sink.error(
            START, "the file is empty; expected a mission with 'version', 'name' and 'steps'"
        )
        return None
    return SourceDocument(file, text, composer.root, lines)
