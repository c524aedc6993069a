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
import re
from dataclasses import dataclass
from typing import Any

import yaml

from rustchain.domain.diagnostics import START, DiagnosticSink, Position
from rustchain.domain.source import LineIndex, Node, NodeKind, Scalar, SourceDocument

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """Bounds that keep hostile input cheap to refuse."""

    max_bytes: int = 32 * 1024 * 1024
    max_depth: int = 100
    max_nodes: int = 5_000_000


class _ReadingAbortedError(Exception):
    """Raised inside the composer once an error makes the rest of the file meaningless."""


_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?[0-9]+$")
_OCT = re.compile(r"^0o[0-7]+$")
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")

_TAG_PREFIX = "tag:yaml.org,2002:"


def _resolve_plain(text: str) -> Scalar:
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


def _resolve_tagged(tag: str, text: str) -> Scalar:
    kind = tag.removeprefix(_TAG_PREFIX)
    if kind == "str":
        return text
    resolved = _resolve_plain(text)
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


class _Composer:
    """Builds the node tree from parser events, keeping positions and enforcing limits."""

    def __init__(self, sink: DiagnosticSink, lines: LineIndex, limits: ReadLimits) -> None:
        self.sink = sink
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

    def feed(self, event: Any) -> None:
        if isinstance(event, yaml.ScalarEvent):
            self._scalar(event)
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            self._start(event)
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            node = self.stack.pop()
            self.pending_keys.pop()
            self._attach(node)
        elif isinstance(event, yaml.AliasEvent):
            self._alias(event)
        elif isinstance(event, yaml.DocumentStartEvent):
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
        kind = NodeKind.MAPPING if isinstance(event, yaml.MappingStartEvent) else NodeKind.SEQUENCE
        node = Node(kind, self._pos(event.start_mark), {} if kind is NodeKind.MAPPING else [])
        if event.anchor is not None:
            self.anchors[event.anchor] = node
        self.stack.append(node)
        self.pending_keys.append(None)

    def _scalar(self, event: Any) -> None:
        position = self._pos(event.start_mark)
        text: str = event.value
        value: Scalar
        if event.tag not in (None, "!"):
            try:
                value = _resolve_tagged(event.tag, text)
            except ValueError as error:
                self.fail(position, str(error))
        elif event.style in (None, "") and event.tag is None:
            try:
                value = _resolve_plain(text)
            except ValueError:
                self.fail(position, "expected a number of at most 4300 digits, found a longer one")
        else:
            value = text
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(position, f"expected a finite number, found '{text}'")
        node = Node(NodeKind.SCALAR, position, value)
        if isinstance(value, str):
            node.span = (event.start_mark.index, event.end_mark.index)
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
            return
        pending = self.pending_keys[-1]
        if pending is None:
            self.pending_keys[-1] = self._key(parent, node)
            return
        self.pending_keys[-1] = None
        key, key_position = pending
        if key:
            parent.value[key] = node
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
    return text.removeprefix("\ufeff")


def _character_at(text: str, position: Position) -> str:
    line = text.split("\n", position.line)[position.line - 1] if position.line >= 1 else ""
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
    composer = _Composer(sink, lines, limits)
    # JSON allows tabs where YAML does not; outside strings they are only white space and
    # inside strings JSON forbids them raw, so a one-for-one swap keeps every column.
    parse_text = text.replace("\t", " ") if is_json else text
    try:
        for event in yaml.parse(parse_text, Loader=_Loader):
            composer.feed(event)
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
