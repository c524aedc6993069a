"""The project's own error kinds that a service's status table maps to a gRPC status.

A servicer maps only errors the project raises on purpose, so that a built-in error (a ValueError
from a library, a KeyError from a bug) is never mistaken for the caller's fault.
"""

from __future__ import annotations


class CorruptHistoryError(Exception):
    """A stored event that cannot be read as its fact: undecodable, of a version this code has no
    path from, or with a payload its fact does not accept. The store, not the caller, is at fault.

    Not a ValueError on purpose: a caller's bad input and a broken history must never share a
    status.
    """
