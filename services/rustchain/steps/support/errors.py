"""How step runners fail: errors a user can act on, never a Python traceback."""

from __future__ import annotations


class StepRunError(Exception):
    """A step attempt failed for a reason the user can act on; the message says what and where."""


class WorkspaceEscapeError(StepRunError):
    """A path that would leave the mission's workspace."""


class PolicyRefusedError(StepRunError):
    """A concrete value the tenant's policy refuses at run time (the verifier's rules again)."""
