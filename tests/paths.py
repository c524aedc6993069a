"""Where the tests find the repository, its test data and the shared RustChain missions."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
BROKEN = DATA / "broken"
VALID = DATA / "valid"
SHARED = REPO.parent / "shared"
COMPAT = SHARED / "compat" / "rustchain-community"
HISTORY = SHARED / "compat" / "rustchain-history"
WARNED = DATA / "warned"
