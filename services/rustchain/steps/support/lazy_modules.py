"""A mapping from names to one attribute of modules that are imported on first lookup.

The step-type registry is one: `rustchain validate` of a mission with three step types imports
those three modules, not all fifty-one (each pulls in its own parsers, clients and policy checks).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class LazyModuleAttributes(Mapping[str, T], Generic[T]):
    """`modules[name]`'s `attribute`, its module imported when the name is first looked up.

    Names, membership and length come from the table alone; only a lookup (or iterating over the
    values) imports. `extra` holds values that are already loaded (plug-ins), looked up first.
    """

    def __init__(
        self, modules: Mapping[str, str], attribute: str, extra: Mapping[str, T] | None = None
    ) -> None:
        self._modules = dict(modules)
        self._attribute = attribute
        self._loaded: dict[str, T] = dict(extra or {})
        self._names = sorted({*self._modules, *self._loaded})

    def __getitem__(self, name: str) -> T:
        loaded = self._loaded.get(name)
        if loaded is not None:
            return loaded
        module = importlib.import_module(self._modules[name])  # KeyError: not in the table
        value: T = getattr(module, self._attribute)
        self._loaded[name] = value
        return value

    def __contains__(self, name: object) -> bool:
        return name in self._loaded or name in self._modules

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)
