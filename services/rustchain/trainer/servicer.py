"""The trainer's gRPC servicer: one tenant's recorded trajectories, and its learning: optimise a
suite, list and roll back policies, export judged trajectories."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from rustchain.domain.language.diagnostics import DiagnosticSink
from rustchain.domain.runs.trajectory import Trajectory
from rustchain.domain.runs.tuned_policy import MissionPolicies, Score
from rustchain.domain.training.suite import Suite, parse_suite
from rustchain.generated.rustchain.trainer.v1 import trainer_pb2, trainer_pb2_grpc
from rustchain.platform.grpc.request_checks import (
    BadRequestError,
    check_mission_id,
    check_text,
    request_tenant,
)
from rustchain.platform.grpc.server import ServiceBinding, StatusTable, abort_with
from rustchain.trainer.exports import FORMATS, export_lines, rewarded_trajectories
from rustchain.trainer.optimizer import Outcome, Progress
from rustchain.trainer.trainer_events import TrainerEvents
from rustchain.trainer.trajectory_store import TrajectoryStore

STATUS: StatusTable = {
    BadRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    KeyError: grpc.StatusCode.NOT_FOUND,
    PermissionError: grpc.StatusCode.PERMISSION_DENIED,
    ValueError: grpc.StatusCode.INVALID_ARGUMENT,
    sqlite3.Error: grpc.StatusCode.UNAVAILABLE,
}
MAX_SUITE_CHARACTERS = 4 * 1024 * 1024

Optimise = Callable[[str, Suite, bytes, int, Progress], Awaitable[Outcome]]
"""Runs one optimisation for a tenant: suite, mission text, seed, progress (the composition
root hands it in: it runs missions through an executor, which the trainer may not import).
Raises ValueError for a mission at fault, PermissionError for one the tenant may not run."""


def _score(score: Score | None) -> trainer_pb2.Score | None:
    if score is None:
        return None
    return trainer_pb2.Score(score=score.score, passed=score.passed, total=score.total)


def _versions(state: MissionPolicies) -> list[trainer_pb2.PolicyVersion]:
    return [
        trainer_pb2.PolicyVersion(
            mission=state.mission,
            version=version.version,
            settings_json=json.dumps(
                {k: v.model_dump(mode="json") for k, v in version.steps.items()}
            ),
            reason=version.reason,
            baseline=_score(version.baseline),
            candidate=_score(version.candidate),
            interval_low=version.interval[0] if version.interval else 0.0,
            interval_high=version.interval[1] if version.interval else 0.0,
            promoted=version.version == state.current,
            rolled_back=version.rolled_back_at is not None,
        )
        for version in state.versions.values()
    ]


def _suite(text: str) -> Suite:
    if len(text) > MAX_SUITE_CHARACTERS:
        raise BadRequestError(f"'suite_yaml' is longer than {MAX_SUITE_CHARACTERS} characters")
    sink = DiagnosticSink("suite.yaml")
    suite = parse_suite(text.encode("utf-8"), "suite.yaml", sink)
    if suite is None or sink.has_errors:
        raise BadRequestError("; ".join(d.render() for d in sink.sorted()))
    return suite


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

    def __init__(
        self,
        store: TrajectoryStore,
        events: TrainerEvents | None = None,
        optimise: Optimise | None = None,
    ) -> None:
        self.store = store
        self.events = events
        self.optimise = optimise

    def _events(self) -> TrainerEvents:
        if self.events is None:
            raise KeyError("this trainer keeps no policies (started without its event store)")
        return self.events

    async def Optimize(
        self,
        request: trainer_pb2.OptimizeRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[trainer_pb2.OptimizeUpdate]:
        """Progress lines of one optimisation, then its result."""
        lines: asyncio.Queue[str] = asyncio.Queue()
        task: asyncio.Task[Outcome] | None = None
        try:
            tenant = request_tenant(context.invocation_metadata())
            suite = _suite(request.suite_yaml)
            if self.optimise is None:
                raise KeyError("this trainer cannot run missions (started without an executor)")
            mission = request.mission_yaml.encode("utf-8")
            task = asyncio.ensure_future(
                self.optimise(tenant, suite, mission, request.seed, lines.put_nowait)
            )
            while not task.done() or not lines.empty():
                getter = asyncio.ensure_future(lines.get())
                await asyncio.wait([getter, task], return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield trainer_pb2.OptimizeUpdate(progress=getter.result())
                else:
                    getter.cancel()
            outcome = task.result()
        except Exception as error:
            await abort_with(context, error, STATUS)
        finally:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        yield trainer_pb2.OptimizeUpdate(
            result=trainer_pb2.OptimizeResult(
                baseline=_score(outcome.baseline),
                candidate=_score(outcome.candidate),
                promoted=outcome.promoted,
                policy_version=outcome.policy_version,
                interval_low=outcome.interval[0],
                interval_high=outcome.interval[1],
                missions_run=outcome.missions_run,
            )
        )

    async def ListPolicies(
        self,
        request: trainer_pb2.ListPoliciesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> trainer_pb2.ListPoliciesResponse:
        """Every version of the tenant's learned policies, with its evidence."""
        try:
            tenant = request_tenant(context.invocation_metadata())
            events = self._events()
            mission = check_text("mission", request.mission, 256)
            names = [mission] if mission else await asyncio.to_thread(events.missions, tenant)
            states = [await asyncio.to_thread(events.policies, tenant, name) for name in names]
        except Exception as error:
            await abort_with(context, error, STATUS)
        return trainer_pb2.ListPoliciesResponse(
            versions=[version for state in states for version in _versions(state)]
        )

    async def RollbackPolicy(
        self,
        request: trainer_pb2.RollbackPolicyRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> trainer_pb2.RollbackPolicyResponse:
        """Restore the version promoted before the current one."""
        try:
            tenant = request_tenant(context.invocation_metadata())
            mission = check_text("mission", request.mission, 256, required=True)
            now = await asyncio.to_thread(self._events().rolled_back, tenant, mission)
        except Exception as error:
            await abort_with(context, error, STATUS)
        return trainer_pb2.RollbackPolicyResponse(version=now)

    async def ExportTrajectories(
        self,
        request: trainer_pb2.ExportTrajectoriesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[trainer_pb2.ExportRecord]:
        """The tenant's judged trajectories as training records of one format."""
        try:
            tenant = request_tenant(context.invocation_metadata())
            if request.format not in FORMATS:
                raise BadRequestError(
                    f"'format' is {request.format!r}; use one of {', '.join(FORMATS)}"
                )
            events = self._events()
            found = await asyncio.to_thread(self.store.trajectories, tenant)
            judged = {
                t.mission_id: [e.payload for e in events.judgements(tenant, t.mission_id)]
                for t in found
            }
            records = list(
                export_lines(
                    request.format, rewarded_trajectories(found, judged), request.min_reward
                )
            )
        except Exception as error:
            await abort_with(context, error, STATUS)
        for record in records:
            yield trainer_pb2.ExportRecord(json=json.dumps(record, ensure_ascii=False))

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
