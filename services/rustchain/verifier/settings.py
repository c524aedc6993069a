"""How the verifier runs, without importing the solver (the command line reads it at start)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TIMEOUT_MS = 2000


@dataclass(frozen=True)
class VerifierSettings:
    """How long one solver query may take before its rule counts as undecided."""

    timeout_ms: int = DEFAULT_TIMEOUT_MS
