"""The trainer's gRPC servicer: one tenant's recorded trajectories."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import grpc

from rustchain.domain.trajectory import Trajectory
from rustchain.generated.rustchain.trainer.v1 import trainer_pb2, trainer_pb2_grpc
from rustchain.platform.grpc_requests import BadRequestError, check_mission_id, request_tenant
from rustchain.platform.grpc_server import ServiceBinding, StatusTable, abort_with
from rustchain.trainer.trajectory_store import SqliteTrajectoryStore

STATUS: StatusTable = {
    BadRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    KeyError: grpc.StatusCode.NOT_FOUND,
    sqlite3.Error: grpc.StatusCode.UNAVAILABLE,
}


def trajectory_message(trajectory: Trajectory, whole: bool) -> trainer_pb2.Trajectory:
    """The protobuf form of a trajectory; `whole` adds its JSON."""
    return trainer_pb2.Trajectory(
        mission_id=trajectory.mission_id,
        mission_name=trajectory.mission_name,
        plan_hash=trajectory.plan_hash,
        outcome=trajectory.outcome,
        started_at=trajectory.started_at.isoformat(),
        finished_at=trajectory.finished_at.isoformat(),
        duration_ms=trajectory.duration_ms,
        steps=len(trajectory.steps),
        trajectory_json=trajectory.model_dump_json() if whole else "",
    )


class TrainerServicer(trainer_pb2_grpc.TrainerServiceServicer):
    """Reads the trajectory store the consumer writes."""

    def __init__(self, store: SqliteTrajectoryStore) -> None:
        self.store = store

    async def GetTrajectory(
        self,
        request: trainer_pb2.GetTrajectoryRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> trainer_pb2.Trajectory:
        """A mission's trajectory, once the consumer has recorded it."""
        try:
            tenant = request_tenant(context.invocation_metadata())
            mission_id = check_mission_id("mission_id", request.mission_id)
            found = await asyncio.to_thread(self.store.get, tenant, mission_id)
            if found is None:
                raise KeyError(f"no trajectory of mission '{request.mission_id}' yet")
        except Exception as error:
            await abort_with(context, error, STATUS)
        return trajectory_message(found, whole=True)

    async def ListTrajectories(
        self,
        request: trainer_pb2.ListTrajectoriesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> trainer_pb2.ListTrajectoriesResponse:
        """Every trajectory of the tenant, by mission id."""
        try:
            tenant = request_tenant(context.invocation_metadata())
            found = await asyncio.to_thread(self.store.trajectories, tenant)
        except Exception as error:
            await abort_with(context, error, STATUS)
        return trainer_pb2.ListTrajectoriesResponse(
            trajectories=[trajectory_message(t, whole=False) for t in found]
        )


def binding(servicer: TrainerServicer) -> ServiceBinding:
    """The servicer as the gRPC server helper takes it."""
    return ServiceBinding(
        servicer,
        trainer_pb2_grpc.add_TrainerServiceServicer_to_server,
        trainer_pb2.DESCRIPTOR.services_by_name["TrainerService"].full_name,
    )
