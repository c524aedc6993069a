"""Functions of source files, found by tree-sitter: name, where, signature, enclosing type, doc.

One installed grammar per language (python, javascript, typescript, tsx, rust, go, java); the
syntax tree is walked without recursion, so deeply nested code cannot exhaust the stack.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tree_sitter import Node, Parser

_GRAMMARS: dict[str, tuple[str, str]] = {  # language: (module, function giving the grammar)
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "rust": ("tree_sitter_rust", "language"),
    "go": ("tree_sitter_go", "language"),
    "java": ("tree_sitter_java", "language"),
}
LANGUAGES = tuple(_GRAMMARS)

EXTENSIONS = {
    **{".py": "python", ".pyi": "python"},
    **{".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript"},
    **{".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx"},
    **{".rs": "rust", ".go": "go", ".java": "java"},
}

_FUNCTIONS = {
    "function_definition",  # python
    "function_declaration",  # javascript, typescript, go
    "generator_function_declaration",
    "method_definition",
    "method_signature",
    "function_signature",
    "function_item",  # rust
    "function_signature_item",
    "method_declaration",  # go, java
    "constructor_declaration",
}
_FUNCTION_VALUES = {"arrow_function", "function_expression", "function", "generator_function"}
_TYPES = {
    *("class_definition", "class_declaration", "abstract_class_declaration", "class"),
    *("interface_declaration", "enum_declaration", "record_declaration", "trait_item"),
    "impl_item",
}
_COMMENTS = {"comment", "line_comment", "block_comment"}
_WRAPPERS = {"export_statement", "decorated_definition", "lexical_declaration"}
_SPACE = re.compile(r"\s+")
MAX_SIGNATURE = 300


@dataclass(frozen=True)
class Function:
    """One function or method of a file."""

    name: str
    kind: str  # function or method
    file: str
    line: int
    end_line: int
    signature: str
    parent: str | None  # the class, impl, trait or interface it belongs to
    doc: str

    def as_json(self) -> dict[str, Any]:
        """The function as a JSON-ready mapping."""
        return asdict(self)


def language_of(path: str) -> str | None:
    """The language a file's extension says, if it is one with a grammar."""
    return EXTENSIONS.get(posixpath.splitext(path)[1].lower())


@cache
def _parser(language: str) -> Parser:
    # The grammars load when code is read, not when a mission is validated.
    from tree_sitter import Language, Parser

    module, function = _GRAMMARS[language]
    grammar: Callable[[], object] = getattr(import_module(module), function)
    return Parser(Language(grammar()))


def _text(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", errors="replace")


def _walk(root: Node) -> Iterator[Node]:
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.named_children))


def _name(node: Node) -> str | None:
    if node.type in _FUNCTIONS:
        return _text(node.child_by_field_name("name")) or None
    if node.type == "variable_declarator":
        value = node.child_by_field_name("value")
        if value is not None and value.type in _FUNCTION_VALUES:
            return _text(node.child_by_field_name("name")) or None
    return None


def _parent(node: Node) -> str | None:
    if node.type == "method_declaration" and node.child_by_field_name("receiver") is not None:
        receiver = _text(node.child_by_field_name("receiver")).strip("()")
        return receiver.split()[-1].lstrip("*") if receiver.split() else None
    ancestor = node.parent
    while ancestor is not None:
        if ancestor.type in _TYPES:
            named = ancestor.child_by_field_name("name") or ancestor.child_by_field_name("type")
            return _text(named) or None
        ancestor = ancestor.parent
    return None


def _signature(node: Node) -> str:
    """The text of the declaration up to its body, on one line."""
    body = node.child_by_field_name("body")
    if node.type == "variable_declarator":
        value = node.child_by_field_name("value")
        body = value.child_by_field_name("body") if value is not None else None
    source = node.text or b""
    end = body.start_byte - node.start_byte if body is not None else len(source)
    text = _SPACE.sub(" ", source[:end].decode("utf-8", errors="replace")).strip()
    text = text.removesuffix(";").removesuffix("=>").removesuffix(":").strip()
    return text if len(text) <= MAX_SIGNATURE else text[: MAX_SIGNATURE - 1] + "…"


def _python_doc(node: Node) -> str:
    body = node.child_by_field_name("body")
    first = body.named_children[0] if body is not None and body.named_children else None
    if first is None or first.type != "expression_statement" or not first.named_children:
        return ""
    string = first.named_children[0]
    if string.type != "string":
        return ""
    parts = [_text(c) for c in string.named_children if c.type == "string_content"]
    return _clean_doc("".join(parts))


def _comment_doc(node: Node) -> str:
    """The comments right above the declaration (or above what wraps it: export, decorator)."""
    anchor = node
    while anchor.parent is not None and anchor.parent.type in _WRAPPERS:
        anchor = anchor.parent
    lines: list[str] = []
    line = anchor.start_point[0]
    sibling = anchor.prev_named_sibling
    while sibling is not None and sibling.type in _COMMENTS and sibling.end_point[0] >= line - 1:
        lines[:0] = [_text(sibling).strip()]
        line = sibling.start_point[0]
        sibling = sibling.prev_named_sibling
    return _clean_doc("\n".join(lines), comment=True)


def _clean_doc(text: str, *, comment: bool = False) -> str:
    out = []
    for raw in text.strip().splitlines():
        line = raw.strip()
        if comment:
            for marker in ("///", "//!", "//", "/**", "/*", "*/", "*"):
                line = line.removeprefix(marker)
            line = line.removesuffix("*/").strip()
        out.append(line)
    return "\n".join(out).strip()


def functions_of(source: bytes, language: str, file: str) -> list[Function]:
    """Every function and method of one file's source, in order of appearance."""
    tree = _parser(language).parse(source)
    found = []
    for node in _walk(tree.root_node):
        name = _name(node)
        if name is None:
            continue
        parent = _parent(node)
        method = parent is not None or node.type in ("method_definition", "method_signature")
        doc = _python_doc(node) if language == "python" else _comment_doc(node)
        found.append(
            Function(
                name=name,
                kind="method" if method else "function",
                file=file,
                line=node.start_point[0] + 1,
                end_line=node.end_point[0] + 1,
                signature=_signature(node),
                parent=parent,
                doc=doc,
            )
        )
    return found
