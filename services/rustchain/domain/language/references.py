"""References inside parameter text: `{var}`, `{step}`, `{step.output}`, `{step_result}`,
`{previous_result}`, `{secrets.NAME}`.

Braces around any other word stay literal text, as in RustChain, so code written into files
(`f"{name}"`, JSON, `${shell}`, `{{ template }}`) is left alone. A word one typo away from a step or
variable is reported instead of being silently left literal.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from rustchain.domain.language.secret_refs import SECRETS_NAMESPACE, valid_secret_name
from rustchain.domain.language.suggest import near_miss

_REFERENCE = re.compile(
    r"(?<![{$])\{([A-Za-z_][A-Za-z0-9_-]*)(?:\.([A-Za-z_][A-Za-z0-9_.-]*))?\}(?!\})"
)
PREVIOUS_RESULT = "previous_result"
_RESULT_SUFFIX = "_result"


class ReferenceKind(Enum):
    """What a reference points at."""

    VARIABLE = "variable"
    STEP = "step"
    PREVIOUS = "previous"
    SECRET = "secret"


@dataclass(frozen=True, slots=True)
class Reference:
    """A resolved reference: a variable, a step's output (or one field of it), or a secret."""

    kind: ReferenceKind
    name: str
    field: str | None
    text: str
    offset: int


@dataclass(frozen=True, slots=True)
class UnknownReference:
    """A reference-shaped word that names nothing, with the closest real name if there is one."""

    text: str
    name: str
    suggestion: str | None
    offset: int


def scan(
    text: str, step_ids: Mapping[str, Any], variables: Mapping[str, Any]
) -> Iterator[Reference | UnknownReference]:
    """Every reference in a text, resolved against the mission's steps and variables."""
    if "{" not in text:
        return
    for match in _REFERENCE.finditer(text):
        name, field = match.group(1), match.group(2)
        whole, offset = match.group(0), match.start()
        if name == SECRETS_NAMESPACE and field is not None:
            # `secrets` is reserved: its value comes from the tenant's store at run time.
            if valid_secret_name(field):
                yield Reference(ReferenceKind.SECRET, field, None, whole, offset)
            else:
                yield UnknownReference(whole, name, None, offset)
        elif name == PREVIOUS_RESULT and field is None:
            yield Reference(ReferenceKind.PREVIOUS, name, None, whole, offset)
        elif name in variables and field is None:
            yield Reference(ReferenceKind.VARIABLE, name, None, whole, offset)
        elif name in step_ids:
            yield Reference(ReferenceKind.STEP, name, field, whole, offset)
        elif name.endswith(_RESULT_SUFFIX) and name[: -len(_RESULT_SUFFIX)] in step_ids:
            yield Reference(ReferenceKind.STEP, name[: -len(_RESULT_SUFFIX)], field, whole, offset)
        else:
            suggestion = near_miss(name, [*step_ids, *variables])
            if suggestion is not None or field == "output":
                yield UnknownReference(whole, name, suggestion, offset)


def may_hold_reference(value: Any) -> bool:
    """Whether any text inside a value has the shape of a reference (`{name}`, `{a.b}`), whatever
    it names: rendering might then change the value."""
    return any(_REFERENCE.search(text) for _, text in strings_in(value))


def strings_in(value: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every text inside a parameter value, with its path (iteratively: depth is bounded anyway)."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            yield path, item
        elif isinstance(item, dict):
            stack.extend(((*path, k), v) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(item))))
