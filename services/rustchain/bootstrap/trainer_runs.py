"""How the trainer runs missions: through the executor, in this process, on the embedded stores.

`ExecutorMissionRunner` is the one place the trainer's optimiser meets the executor: it runs
the suite's verified plan once with variables and llm-step settings and returns the trajectory
folded from the facts the executor recorded, exactly as `rustchain run` would have recorded
them. When the executor's composition root lands, only this module changes.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rustchain.bootstrap.executor import build_executor
from rustchain.domain.plans.bindings import VariableBindingError, bind_variables
from rustchain.domain.plans.compiler import Compilation, compile_mission
from rustchain.domain.plans.plan import Plan
from rustchain.domain.policy.model import Policy
from rustchain.domain.runs.trajectory import Trajectory, build_trajectory
from rustchain.domain.runs.tuned_bounds import PlanBounds, plan_bounds
from rustchain.domain.runs.tuned_policy import StepSettings
from rustchain.domain.training.suite import Suite
from rustchain.platform.storage.event_store import EventStore, EventStoreSettings, open_event_store
from rustchain.platform.storage.home import rustchain_home
from rustchain.platform.storage.memory_store import SqliteMemoryStore, TenantMemory
from rustchain.platform.storage.mission_files import compile_file
from rustchain.steps import constraint_generators, default_registry
from rustchain.trainer.optimizer import Optimiser, Outcome, Progress
from rustchain.trainer.promoted_policies import PromotedPolicies
from rustchain.trainer.servicer import Optimise
from rustchain.trainer.trainer_events import TrainerEvents
from rustchain.trainer.trajectory_store import SqliteTrajectoryStore
from rustchain.verifier.policy_files import POLICIES_FOLDER, TenantPolicies

LLM_SETTINGS_PREFIX = "RUSTCHAIN_LLM_"


class MissionRefusedError(ValueError):
    """A suite's mission that does not compile, or that the tenant's policy refuses."""


def llm_settings(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The endpoint settings llm steps (and the LLM judge) use."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if k.startswith(LLM_SETTINGS_PREFIX)}


def verified_plan(mission_file: Path, policy: Policy) -> Plan:
    """The mission compiled and proven safe under the tenant's policy, or MissionRefusedError."""
    return _verified(compile_file(str(mission_file), default_registry()), policy)


def verified_plan_text(text: bytes, name: str, policy: Policy) -> Plan:
    """The same for a mission's text (sent over gRPC)."""
    return _verified(compile_mission(text, name, default_registry()), policy)


def _verified(compilation: Compilation, policy: Policy) -> Plan:
    # The solver is imported only by the verbs that need it.
    from rustchain.verifier.engine import verify_plan

    if compilation.plan is None:
        problems = "; ".join(d.render() for d in compilation.diagnostics)
        raise MissionRefusedError(f"the suite's mission does not compile: {problems}")
    verdict = verify_plan(compilation.plan, policy, constraint_generators())
    if not verdict.safe:
        raise MissionRefusedError("; ".join(verdict.render()))
    return compilation.plan


def open_trainer_events(environ: Mapping[str, str] | None = None) -> TrainerEvents:
    """The trainer's event store (judgements, policies), as every service opens its own."""
    return TrainerEvents(open_event_store(EventStoreSettings.from_environ("trainer", environ)))


def bounds_of(plan: Plan) -> PlanBounds:
    """The plan's time and token bounds, which a learned policy's attempts must keep to."""
    return plan_bounds(plan, constraint_generators())


def open_promoted_policies(environ: Mapping[str, str] | None = None) -> PromotedPolicies:
    """The tenants' promoted llm-step policies from the trainer's store, as executors read them."""
    return PromotedPolicies(open_event_store(EventStoreSettings.from_environ("trainer", environ)))


class ExecutorMissionRunner:
    """Runs one plan for one tenant through an executor of its own, on the given store."""

    def __init__(
        self,
        plan: Plan,
        tenant: str,
        policy: Policy,
        store: EventStore,
        home: Path | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.plan = plan
        self.tenant = tenant
        self.store = store
        home = home or rustchain_home()
        self._memory = SqliteMemoryStore(home / "memory.sqlite3")
        # The settings each run's llm steps get, by mission id (runs may overlap).
        self._tuning: dict[str, tuple[int, dict[str, StepSettings]]] = {}
        self.executor = build_executor(
            os.environ,
            store,
            workspaces=home / "workspaces",
            memory_for=lambda t: TenantMemory(self._memory, t),
            policy_for=lambda _tenant: policy,
            step_policies=self._step_policy,
            settings=llm_settings() if settings is None else settings,
        )

    def _step_policy(
        self, _tenant: str, mission_id: str, _mission: str, step_id: str
    ) -> tuple[int, StepSettings] | None:
        found = self._tuning.get(mission_id)
        if found is None or step_id not in found[1]:
            return None
        return found[0], found[1][step_id]

    async def __call__(
        self,
        variables: Mapping[str, Any],
        steps: dict[str, StepSettings] | None,
        version: int,
    ) -> Trajectory:
        """Run the mission once with these variables and settings; its trajectory."""
        try:
            bound = bind_variables(self.plan.variables, variables)
        except VariableBindingError as error:
            raise MissionRefusedError("; ".join(error.problems)) from None
        mission_id = uuid.uuid4().hex
        if steps:
            self._tuning[mission_id] = (version, steps)
        try:
            self.executor.start(self.tenant, self.plan, bound, mission_id=mission_id)
            await self.executor.drive(self.tenant, mission_id)
        finally:
            self._tuning.pop(mission_id, None)
        return build_trajectory(self.store.mission_events(self.tenant, mission_id))

    def close(self) -> None:
        """Release the memory store (the event store belongs to the caller)."""
        self._memory.close()


RUNS_STORE = "trainer_runs"
"""The event store of the missions a deployed trainer runs itself: its own, so the executor
service stays the only writer of the executor's store (SQLite has one writer)."""


def deployment_optimiser(
    environ: Mapping[str, str], events: TrainerEvents, trajectories: SqliteTrajectoryStore
) -> Optimise:
    """The trainer service's Optimize: the tenant's policy from $RUSTCHAIN_HOME/policies, the
    mission verified, run through an executor in the trainer's process on its own store."""
    home = rustchain_home(environ)
    policies = TenantPolicies(home / POLICIES_FOLDER)

    async def optimise(
        tenant: str, suite: Suite, mission: bytes, seed: int, progress: Progress
    ) -> Outcome:
        policy = policies(tenant)
        plan = await asyncio.to_thread(
            verified_plan_text, mission, f"{suite.name}/{suite.mission}", policy
        )
        store = open_event_store(EventStoreSettings.from_environ(RUNS_STORE, environ))
        runner = ExecutorMissionRunner(plan, tenant, policy, store, home, llm_settings(environ))
        try:
            optimiser = Optimiser(
                suite,
                plan.mission_name,
                tenant,
                runner,
                events,
                policy,
                llm_settings(environ),
                progress,
                seed,
                bounds=bounds_of(plan),
            )
            outcome = await optimiser.optimise()
            for run in outcome.runs:
                trajectories.put(run.trajectory)
        finally:
            runner.close()
            store.close()
        return outcome

    return optimise
