"""The exit codes every verb shares (documented in the README)."""

from __future__ import annotations

OK = 0
MISSION_AT_FAULT = 1
USAGE = 2
UNREACHABLE = 3
