"""Compiler-style diagnostics: `FILE:LINE:COL: severity: message`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


class Severity(StrEnum):
    """How bad a diagnostic is; only errors make a file invalid."""

    ERROR = "error"
    WARNING = "warning"


class Position(NamedTuple):
    """A 1-based line and column in a source file (a tuple: millions are made per large file)."""

    line: int
    column: int


START = Position(1, 1)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in a file, at a precise position."""

    file: str
    position: Position
    severity: Severity
    message: str

    def render(self) -> str:
        """The one-line form a compiler prints."""
        p = self.position
        return f"{self.file}:{p.line}:{p.column}: {self.severity.value}: {self.message}"

    def sort_key(self) -> tuple[int, int, str]:
        """Order of appearance in the file."""
        return (self.position.line, self.position.column, self.message)


class DiagnosticSink:
    """Collects every diagnostic of one file, so that all problems are reported in one pass."""

    def __init__(self, file: str) -> None:
        self.file = file
        self._items: list[Diagnostic] = []

    def error(self, position: Position, message: str) -> None:
        """Record an error: the file is invalid."""
        self._items.append(Diagnostic(self.file, position, Severity.ERROR, message))

    def warning(self, position: Position, message: str) -> None:
        """Record a warning: the file stays valid."""
        self._items.append(Diagnostic(self.file, position, Severity.WARNING, message))

    @property
    def has_errors(self) -> bool:
        """True once any error was recorded."""
        return any(d.severity is Severity.ERROR for d in self._items)

    def sorted(self) -> list[Diagnostic]:
        """Every diagnostic in file order, each once."""
        return sorted(set(self._items), key=Diagnostic.sort_key)
