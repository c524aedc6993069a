"""RustChain's nested `chain` (`parameters.steps`), written out as steps of the mission.

RustChain runs a chain's sub-steps in list order, each as a normal step whose id is its
`step_name`, and stops at the first that does not succeed. Here each sub-step becomes a step of the
mission depending on the one before it (the first on the chain's own `depends_on`), and the chain
step itself becomes a `noop` that ends after the last: the verifier proves every sub-step and the
sandbox contains it like any other step, and a failure skips the rest. The tree is rewritten before
the loader reads it, keeping each value's position, so every diagnostic points where it is written.
"""

from __future__ import annotations

from rustchain.domain.language.diagnostics import DiagnosticSink, Position
from rustchain.domain.language.source import NO_KEYS, Node, NodeKind, SourceDocument
from rustchain.domain.language.step_types import canonical_step_type

_CARRIED = ("timeout_seconds",)
# RustChain reads these of a sub-step (`timeout_seconds` is accepted and ignored there).
_SUB_STEP_KEYS = ("step_name", "step_type", "parameters", "timeout_seconds")


def _scalar(value: str, position: Position) -> Node:
    return Node(NodeKind.SCALAR, position, value, NO_KEYS, value)


def _mapping(
    entries: dict[str, Node], position: Position, keys: dict[str, Position] | None = None
) -> Node:
    node = Node(NodeKind.MAPPING, position, {}, {}, {})
    for key, child in entries.items():
        node.value[key] = child
        node.plain[key] = child.plain
        node.key_positions[key] = (keys or {}).get(key, child.position)
    return node


def _sequence(items: list[Node], position: Position) -> Node:
    return Node(NodeKind.SEQUENCE, position, list(items), NO_KEYS, [i.plain for i in items])


def _is_nested_chain(step: Node) -> bool:
    if step.kind is not NodeKind.MAPPING:
        return False
    kind = step.child("step_type")
    if kind is not None and kind.kind is NodeKind.MAPPING:
        kind = kind.child("type")
    params = step.child("parameters")
    return (
        kind is not None
        and isinstance(kind.value, str)
        and canonical_step_type(kind.value) == "chain"
        and params is not None
        and params.child("steps") is not None
    )


def _expand(chain: Node, sink: DiagnosticSink) -> list[Node]:
    """The sub-steps of one nested chain as steps, then the chain as a `noop` after them."""
    params = chain.child("parameters")
    assert params is not None
    subs = params.child("steps")
    assert subs is not None
    if subs.kind is not NodeKind.SEQUENCE or not subs.items:
        sink.error(subs.position, "a chain's 'steps' expects a non-empty list of steps")
        return [chain]
    previous = chain.child("depends_on")
    carried = {k: v for k in _CARRIED if (v := chain.child(k)) is not None}
    steps: list[Node] = []
    for sub in subs.items:
        name = sub.child("step_name") if sub.kind is NodeKind.MAPPING else None
        if name is None or not isinstance(name.value, str):
            sink.error(
                sub.position,
                "expected a chain sub-step: a mapping with 'step_name', 'step_type' and "
                "'parameters'",
            )
            continue
        for key, position in sub.key_positions.items():
            if key not in _SUB_STEP_KEYS:
                sink.warning(position, f"unknown key '{key}' in a chain sub-step is ignored")
        entries = {"id": name, "name": name}
        for key in ("step_type", "parameters"):
            if (value := sub.child(key)) is not None:
                entries[key] = value
        if previous is not None:
            entries["depends_on"] = previous
        steps.append(_mapping({**entries, **carried}, sub.position))
        previous = _sequence([_scalar(name.value, name.position)], name.position)
    if not steps:
        return [chain]
    ending = {k: v for k, v in chain.mapping.items() if k not in ("parameters", "depends_on")}
    type_node = chain.child("step_type")
    assert type_node is not None
    ending["step_type"] = _scalar("noop", type_node.position)
    ending["parameters"] = _mapping({}, params.position)
    if previous is not None:
        ending["depends_on"] = previous
    return [*steps, _mapping(ending, chain.position, chain.key_positions)]


def expand_nested_chains(document: SourceDocument, sink: DiagnosticSink) -> SourceDocument:
    """The document with every nested chain written out as steps (itself when it has none)."""
    root = document.root
    steps = root.child("steps") if root.kind is NodeKind.MAPPING else None
    if steps is None or steps.kind is not NodeKind.SEQUENCE:
        return document
    if not any(_is_nested_chain(step) for step in steps.items):
        return document
    pending = list(reversed(steps.items))
    written: list[Node] = []
    while pending:
        step = pending.pop()
        if _is_nested_chain(step):
            # A sub-step may itself be a nested chain: it is expanded in its turn.
            pending.extend(reversed(_expand(step, sink)))
            if pending and pending[-1] is step:
                written.append(pending.pop())
        else:
            written.append(step)
    entries = dict(root.mapping)
    entries["steps"] = _sequence(written, steps.position)
    new_root = _mapping(entries, root.position)
    new_root.key_positions = dict(root.key_positions)
    return SourceDocument(document.file, document.text, new_root, document.lines)
