"""The stores and JetStream agree: the same events, in the same order, with the same content.

The store of each service is the source of truth and JetStream carries a copy, so each chain
(tenant, mission, service) is compared position by position and the first disagreement named: an
event missing from JetStream, one JetStream has that the store lacks, one out of order, or one whose
content differs.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from rustchain.domain.events.envelope import EventEnvelope
from rustchain.domain.runs.audit import AuditFinding, ChainKey, chains


@dataclass(frozen=True)
class StreamComparison:
    """What comparing the stores with JetStream found."""

    chains: int
    stored: int
    streamed: int
    findings: list[AuditFinding]


def _describe(event: EventEnvelope) -> str:
    return f"event {event.id} ({event.type})"


def _first_disagreement(
    stored: list[EventEnvelope], streamed: list[EventEnvelope]
) -> tuple[int, str] | None:
    stored_ids = {e.id for e in stored}
    streamed_ids = {e.id for e in streamed}
    for position, (ours, theirs) in enumerate(zip(stored, streamed, strict=False), start=1):
        if ours.id not in streamed_ids:
            return position, f"{_describe(ours)} is in the store but missing from JetStream"
        if theirs.id not in stored_ids:
            return position, f"{_describe(theirs)} is in JetStream but not in the store"
        if ours.id != theirs.id:
            return position, (
                f"out of order: the store has {_describe(ours)} here, JetStream has"
                f" {_describe(theirs)}"
            )
        ours_hash, theirs_hash = ours.computed_hash(), theirs.computed_hash()
        if ours_hash != theirs_hash or ours.hash != theirs.hash:
            return position, (
                f"{_describe(ours)} differs: content hash {ours_hash[:12]} in the store,"
                f" {theirs_hash[:12]} in JetStream"
            )
    common = min(len(stored), len(streamed))
    if len(stored) > common:
        later = len(stored) - common - 1
        rest = f" (and the {later} event(s) after it)" if later else ""
        return common + 1, (
            f"{_describe(stored[common])} is in the store but missing from JetStream{rest}:"
            " not relayed yet, or removed from the stream"
        )
    if len(streamed) > common:
        extra = streamed[common]
        where = "more than once" if extra.id in stored_ids else "but not in the store"
        return common + 1, f"{_describe(extra)} is in JetStream {where}"
    return None


def compare_with_stream(
    stored: Iterable[EventEnvelope],
    streamed: Iterable[EventEnvelope],
    services: Collection[str],
) -> StreamComparison:
    """Each chain of the stores against JetStream's copy; only the services given are compared.

    `streamed` is what the stream holds for the same scope (a tenant, or one mission), in stream
    order; events of other services in it (whose stores are not audited) are left out.
    """
    ours = {k: v for k, v in chains(stored).items() if k[2] in services}
    theirs = {k: v for k, v in chains(streamed).items() if k[2] in services}
    keys: list[ChainKey] = [*ours, *(k for k in theirs if k not in ours)]
    findings: list[AuditFinding] = []
    for key in keys:
        found = _first_disagreement(ours.get(key, []), theirs.get(key, []))
        if found is not None:
            tenant, mission, service = key
            position, problem = found
            findings.append(
                AuditFinding(tenant, mission, f"{service} chain, position {position}: {problem}")
            )
    return StreamComparison(
        chains=len(keys),
        stored=sum(map(len, ours.values())),
        streamed=sum(map(len, theirs.values())),
        findings=findings,
    )
