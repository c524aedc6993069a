"""Waiting for a relay's acks: every one that is due, not those queued behind a refusal."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nats.js.api import PubAck

Chain = tuple[str, str, str]
"""A service's chain of a mission: (tenant, mission, service)."""


@dataclass(frozen=True)
class Pending:
    """A publish in flight: which tenant's event at which log position, and its ack."""

    tenant: str
    position: int
    chain: Chain
    event_id: str
    stream: str
    data: bytes
    size: int
    future: asyncio.Future[PubAck]


def _first_refusals(pending: list[Pending]) -> dict[str, int]:
    """Each tenant's first publish of the batch that came back with an error, by position."""
    first: dict[str, int] = {}
    for p in pending:
        if p.future.done() and not p.future.cancelled() and p.future.exception() is not None:
            first.setdefault(p.tenant, p.position)
    return first


def _blocked(pending: Pending, failed_at: int | None, refused: Mapping[str, int]) -> bool:
    """Whether a publish waits behind an earlier refused one of its tenant (no ack is due)."""
    first = refused.get(pending.tenant)
    return (failed_at is not None and pending.position > failed_at) or (
        first is not None and pending.position > first
    )


async def await_due_acks(
    pending: list[Pending],
    failed_at: Mapping[str, int | None],
    closed: asyncio.Event,
    timeout: float,
) -> dict[str, Pending] | None:
    """Wait until every due ack is in, or `timeout`; None if the connection closed first.

    Returns, per tenant, its first publish still unanswered: a stream at its limits answers
    only the first of a pipelined run of refusals, so silence is either a full stream or an
    outage, which the caller tells apart. Publishes behind a refusal (`failed_at`, or an error
    in this batch) are not waited for.
    """
    if all(p.future.done() for p in pending):
        return {}
    loop = asyncio.get_running_loop()
    lost: asyncio.Future[bool] = asyncio.ensure_future(closed.wait())
    deadline = loop.time() + timeout
    try:
        while True:
            refused = _first_refusals(pending)
            waiting = {
                p.future
                for p in pending
                if not p.future.done() and not _blocked(p, failed_at.get(p.tenant), refused)
            }
            remaining = deadline - loop.time()
            if not waiting or remaining <= 0:
                break
            waits: set[asyncio.Future[Any]] = {*waiting, lost}
            done, _ = await asyncio.wait(
                waits, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if lost in done:
                return None
    finally:
        lost.cancel()
    silent: dict[str, Pending] = {}
    for p in pending:
        if not p.future.done() and not _blocked(p, failed_at.get(p.tenant), refused):
            silent.setdefault(p.tenant, p)
    return silent
