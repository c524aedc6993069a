"""Secrets in parameters: `{secrets.NAME}` references, their salted digests, masking of values.

A secret's value is never part of a fact: parameters keep the reference text, StepStarted records
a digest of the value salted per mission (so an audit can tell the same value was used without
learning it), and any occurrence of a value in an output or error is replaced by `***`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

SECRETS_NAMESPACE = "secrets"
"""The reserved first word of a secret reference: no step or variable may be named so."""
SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MASK = "***"
_SECRET_REFERENCE = re.compile(r"(?<![{$])\{secrets\.([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")


class SecretReader(Protocol):
    """Where the executor reads a tenant's secret values (None: no such secret)."""

    def get(self, tenant: str, name: str) -> str | None:
        """The value of the tenant's secret, or None when it has none of that name."""
        ...


class UnknownSecretError(LookupError):
    """A reference to a secret the tenant's store does not hold; names it, never a value."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"unknown secret '{name}': the tenant has no secret of that name"
            f" (set it with `rustchain secret set --tenant T {name}`)"
        )
        self.name = name


def valid_secret_name(name: str) -> bool:
    """True for a name a secret may have: a letter or '_', then letters, digits or '_'."""
    return SECRET_NAME.fullmatch(name) is not None


def secret_reference(name: str) -> str:
    """The text a mission writes to use a secret."""
    return f"{{{SECRETS_NAMESPACE}.{name}}}"


def _texts(value: Any) -> Iterable[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def secret_names(value: Any) -> list[str]:
    """The secrets a (nested) parameter value refers to, each once, in a stable order."""
    found: set[str] = set()
    for text in _texts(value):
        if "{secrets." in text:
            found.update(_SECRET_REFERENCE.findall(text))
    return sorted(found)


def secret_digest(salt: str, name: str, value: str) -> str:
    """A salted SHA-256 of a secret's value: equal values give equal digests within a mission."""
    material = "\0".join((salt, name, value)).encode()
    return "sha256:" + hashlib.sha256(material).hexdigest()


def substitute(value: Any, values: Mapping[str, str]) -> Any:
    """Parameters with each `{secrets.NAME}` replaced by its value (UnknownSecretError if
    a name has none); only ever handed to a runner, never recorded."""
    if isinstance(value, dict):
        return {k: substitute(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, values) for v in value]
    if not isinstance(value, str) or "{secrets." not in value:
        return value

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise UnknownSecretError(name)
        return values[name]

    return _SECRET_REFERENCE.sub(value_of, value)


def mask(value: Any, secrets: Iterable[str]) -> Any:
    """The value (text, or JSON-like nesting of texts) with every secret value replaced by `***`.

    Longer values are replaced first, so a secret containing another is masked whole; an empty
    value is ignored (it would match everywhere).
    """
    ordered = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not ordered:
        return value
    return _mask(value, ordered)


def _mask(value: Any, ordered: list[str]) -> Any:
    if isinstance(value, str):
        for secret in ordered:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {_mask(k, ordered): _mask(v, ordered) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v, ordered) for v in value]
    return value
