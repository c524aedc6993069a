"""Which replica drives a mission, as GetMission answers it (the lease's holder, epoch, expiry)."""

from __future__ import annotations

from datetime import UTC, datetime

from rustchain.generated.rustchain.executor.v1 import executor_pb2
from rustchain.platform.storage.mission_leases import MissionLeases


def owner_message(
    leases: MissionLeases, tenant: str, mission_id: str, now: datetime | None = None
) -> executor_pb2.MissionOwner:
    """The mission's lease as this replica sees it in the store (its own, on SQLite)."""
    here = leases.replica.owner
    view = leases.owner_of(tenant, mission_id)
    if view is None:
        return executor_pb2.MissionOwner(shared=leases.shared, answered_by=here)
    expires = view.expires_at
    moment = now if now is not None else datetime.now(UTC)
    return executor_pb2.MissionOwner(
        shared=leases.shared,
        replica=view.owner or "",
        epoch=view.epoch,
        expires_at=expires.isoformat() if expires is not None else "",
        expired=expires is not None and expires <= moment,
        finished=view.finished,
        answered_by=here,
    )


def describe_owner(owner: executor_pb2.MissionOwner, finished: bool) -> str:
    """One line for `rustchain status`: who drives the mission, or why nobody does."""
    if not owner.shared:
        return "executor: this executor (one executor drives an SQLite store)"
    if owner.finished or (finished and not owner.replica):
        return f"executor: finished (lease closed at epoch {owner.epoch})"
    if not owner.replica:
        return "executor: waiting for a replica to claim it (no lease holder)"
    until = f", lease until {owner.expires_at}" if owner.expires_at else ""
    if owner.expired:
        return (
            f"executor: {owner.replica}'s lease expired ({owner.expires_at}, epoch"
            f" {owner.epoch}); another replica takes it over"
        )
    return f"executor: {owner.replica} (epoch {owner.epoch}{until})"
