"""The executor's use cases: start a run, drive it durably to its end, resume after a crash.

Every decision comes from the pure run decisions; this module records their facts in the event
store before acting on them (StepStarted is committed before a runner is called), and folds the
store back into runs after a restart. A step's result and the steps it releases are recorded in
one append, so a step costs one commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets as random_tokens
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rustchain.domain.access.quotas import QuotaExceededError, TenantQuotas
from rustchain.domain.events.envelope import EventDraft, EventEnvelope
from rustchain.domain.events.size import over_limit, payload_bytes
from rustchain.domain.language.secret_refs import SecretReader, secret_names
from rustchain.domain.language.step_types import StepTypeRegistry
from rustchain.domain.plans.artifacts import externalize, inline_bytes_setting, references
from rustchain.domain.plans.bindings import bind_variables
from rustchain.domain.plans.plan import Plan, PlannedStep
from rustchain.domain.policy.model import Policy
from rustchain.domain.policy.obligations import ConstraintGenerator
from rustchain.domain.runs import run_decisions as decide
from rustchain.domain.runs.mission_index import MissionIndex
from rustchain.domain.runs.mission_run import MissionRun
from rustchain.domain.runs.run_events import (
    RUN_EVENT_TYPES,
    RunEvent,
    StepStarted,
    run_event_payload,
    run_event_version,
    run_fact,
)
from rustchain.domain.runs.tuned_bounds import PlanBounds, plan_bounds
from rustchain.domain.runs.tuned_policy import TUNED_STEP_TYPES, StepSettings, tuned_inputs
from rustchain.executor.admission import Admission, StartMission
from rustchain.executor.process_supervisor import MissionProcessSupervisor
from rustchain.executor.run_secrets import RunSecrets, check_secret_flows
from rustchain.executor.workspace_snapshots import WorkspaceSnapshots
from rustchain.platform.sandbox.selection import LazySandbox
from rustchain.platform.storage.artifact_store import ArtifactStore, resolve
from rustchain.platform.storage.event_store import (
    ChainConflictError,
    EventStore,
    artifacts_beside,
    events_after,
)
from rustchain.platform.storage.lease_fence import FencedWrite, Lease, LeaseOpening, LeaseWrite
from rustchain.platform.storage.mission_leases import (
    LocalMissionLeases,
    MissionLeases,
    ReplicaSettings,
)
from rustchain.platform.storage.secret_store import FileSecretStore
from rustchain.platform.telemetry.mission_spans import MissionSpans
from rustchain.steps import constraint_generators, process_start
from rustchain.steps.support.runtime import MemoryClient, StepContext, StepRunError, parameters_of
from rustchain.steps.support.sandboxing import ProgramSandbox

SERVICE = "executor"
Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
"""Waits out a retry's backoff; a test's clock advances instead of waiting."""
EventListener = Callable[[MissionRun, list[RunEvent]], None]
# The learned settings of one llm step: (tenant, mission id, mission name, step id) -> the
# promoted policy's version and settings, or None (the trainer's policies; docs/trainer.md).
StepPolicySource = Callable[[str, str, str, str], tuple[int, StepSettings] | None]


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


@dataclass
class _Tracked:
    """A run being driven, with how many facts its chain holds."""

    tenant: str
    mission_id: str
    run: MissionRun
    version: int
    tasks: dict[asyncio.Task[Any], tuple[str, int]] = field(default_factory=dict)
    # Facts decided outside the drive (a cancel), recorded by the drive in its next append.
    inbox: list[RunEvent] = field(default_factory=list)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Another replica wrote to its chain (a cancel): fold it again from the store at once.
    stale: bool = False
    # The secret values its steps are handed and its outputs are masked of (never recorded).
    secrets: RunSecrets | None = None
    # Its plan's time and token bounds, computed at its first tuned step (a learned policy keeps
    # to them).
    bounds: PlanBounds | None = None
    # The lease the drive holds: its appends are refused once another replica holds it.
    lease: Lease | None = None


class MissionExistsError(ValueError):
    """A start that names a mission id the tenant already used: an id names one run."""


class WorkspaceRefusedError(PermissionError):
    """A workspace the tenant's policy does not let the mission use."""


class MissionNotFoundError(KeyError):
    """A mission id the tenant's store holds no history for."""

    def __str__(self) -> str:
        # KeyError would quote its message; the message is a sentence.
        return str(self.args[0]) if self.args else "no such mission"


class ExecutorApplication:
    """Runs plans durably on an event store, with the step runners of a registry."""

    def __init__(
        self,
        store: EventStore,
        registry: StepTypeRegistry,
        workspaces: Path,
        memory_for: Callable[[str], MemoryClient] | None = None,
        clock: Clock = utc_now,
        listener: EventListener | None = None,
        settings: Mapping[str, str] | None = None,
        policy_for: Callable[[str], Policy] | None = None,
        quotas: TenantQuotas | None = None,
        sandbox: ProgramSandbox | None = None,
        secrets: SecretReader | None = None,
        admission: Admission | None = None,
        sleep: Sleep = asyncio.sleep,
        artifacts: ArtifactStore | None = None,
        artifact_inline_bytes: int | None = None,
        step_policies: StepPolicySource | None = None,
        workspace_snapshots: WorkspaceSnapshots | None = None,
        leases: MissionLeases | None = None,
    ) -> None:
        self.store = store
        # Who drives which mission: this process alone (SQLite), or a lease per mission shared by
        # the replicas on one PostgreSQL store, fencing each drive's appends.
        self.leases: MissionLeases = leases or LocalMissionLeases(ReplicaSettings.from_environ({}))
        # Outputs over the inline size are kept here, beside the events, and referenced by hash.
        self.artifacts = artifacts if artifacts is not None else artifacts_beside(store)
        self.artifact_inline_bytes = (
            artifact_inline_bytes
            if artifact_inline_bytes is not None
            else inline_bytes_setting(os.environ)
        )
        self.registry = registry
        self.workspaces = workspaces
        self.memory_for = memory_for
        self.clock = clock
        self.sleep = sleep
        # Each is told of every append, in order (progress lines, the watchers of a server).
        self.listeners: list[EventListener] = [listener] if listener is not None else []
        # What a start must carry and leave room for; none: every start is admitted.
        self.admission = admission or Admission()
        self.settings = dict(settings or {})
        # The tenant's policy, checked again by the runners on concrete values.
        self.policy_for = policy_for
        self._driving: dict[tuple[str, str], _Tracked] = {}
        # The background programs (process_start) of each mission being driven: all are killed
        # when its drive ends (the mission finished, was cancelled, or this executor stops).
        self._processes: dict[tuple[str, str], MissionProcessSupervisor] = {}
        self.quotas = quotas or TenantQuotas()
        # Programs run in the OS sandbox given (chosen at start); else in the one this process's
        # RUSTCHAIN_SANDBOX names, chosen at the first program.
        self.sandbox: ProgramSandbox = sandbox if sandbox is not None else LazySandbox()
        # Tenants' secrets, read only when a step refers to one (`{secrets.NAME}`).
        self.secrets: SecretReader = secrets or FileSecretStore.from_environ()
        # Unfinished missions per tenant, read from the store once, then kept as runs start and end.
        self._running: dict[str, set[str]] | None = None
        # The store's missions, kept current by folding only what was committed since last read.
        self._index = MissionIndex()
        self._generators: Mapping[str, ConstraintGenerator] | None = None
        self._indexed = 0
        self.step_policies = step_policies
        # Workspaces kept at step boundaries for a new owner (RUSTCHAIN_WORKSPACE_SNAPSHOTS).
        self.workspace_snapshots = workspace_snapshots
        # Trace context for each fact recorded, and the spans and metrics their commits end.
        self.spans = MissionSpans(store.mission_events)

    def subscribe(self, listener: EventListener) -> None:
        """Tell `listener` of every append from now on, after those already subscribed."""
        self.listeners.append(listener)

    async def admit_and_start(self, command: StartMission, *, take: bool = False) -> str:
        """Admit a start (the verifier's grant, the tenant's stream room), then record it."""
        await self.admission.admit(command, self.quotas)
        return self.start(
            command.tenant,
            command.plan,
            command.variables,
            command.mission_id,
            command.workspace,
            take=take,
        )

    def start(
        self,
        tenant: str,
        plan: Plan,
        variables: dict[str, Any],
        mission_id: str | None = None,
        workspace: Path | None = None,
        *,
        take: bool = False,
    ) -> str:
        """Record the start of a run of a plan; returns the mission id.

        With shared leases, the start also makes the mission's lease, taken by this replica when
        `take` (it has room) or left free for another's claim, and the tenant's quota is counted
        in the store in the same transaction, so it holds across replicas.

        The workspace is the one given (the mission's `config.workspace`, resolved by the caller)
        or a fresh folder per mission under the executor's workspaces. The variables are bound
        again against the plan's declarations (types, enums, patterns): a verdict covers the plan,
        not the values a caller sends with it (VariableBindingError names each one that fails).
        """
        variables = bind_variables(plan.variables, variables)
        if workspace is not None and self.policy_for is not None:
            self._check_workspace(self.policy_for(tenant), plan, workspace)
        if mission_id is not None and self.index().has(tenant, mission_id):
            # Appended after the first run's facts, a second start would corrupt its history.
            raise MissionExistsError(
                f"mission '{mission_id}' of tenant '{tenant}' exists already: an id names one run"
            )
        mission_id = mission_id or uuid.uuid4().hex
        opening: LeaseOpening | None = None
        if self.leases.shared:
            owner = self.leases.replica.owner if take else None
            seconds = self.leases.replica.lease_seconds
            opening = LeaseOpening(tenant, mission_id, owner, seconds, self.quotas.check_start)
        else:
            self.quotas.check_start(tenant, len(self._running_missions(tenant)))
        folder = workspace or self.workspaces / tenant / mission_id
        folder.mkdir(parents=True, exist_ok=True)
        salt = random_tokens.token_hex(16)
        events = decide.start_mission(plan, variables, str(folder.absolute()), salt)
        size = payload_bytes(run_event_payload(events[0]))
        if size > self.quotas.max_event_bytes:
            what = "the mission's plan with its variables"
            raise QuotaExceededError(over_limit(what, size, self.quotas.max_event_bytes))
        try:
            self._append(tenant, mission_id, 0, events, opening)
        except QuotaExceededError:
            if workspace is None:
                # Refused by the quota counted in the store: leave no folder for a run never made.
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise
        if opening is None:
            self._running_missions(tenant).add(mission_id)
        return mission_id

    @staticmethod
    def _check_workspace(policy: Policy, plan: Plan, folder: Path) -> None:
        # The caller resolves config.workspace to a folder; a folder for a mission that names none,
        # or names one its tenant's policy does not allow, would let a caller pick any folder.
        named = plan.config.workspace
        if named is None:
            raise WorkspaceRefusedError(
                "a workspace was given for a mission that names none (config.workspace)"
            )
        if not policy.filesystem.allows_mission_workspace(named):
            raise WorkspaceRefusedError(
                f"[filesystem.mission_workspace] the tenant's policy does not allow the workspace"
                f" '{named}' (filesystem.mission_workspaces)"
            )
        resolved = str(folder.resolve())
        if not policy.filesystem.allows_workspace_folder(resolved):
            raise WorkspaceRefusedError(
                f"[filesystem.workspace_roots] the workspace '{named}' resolves to {resolved},"
                " outside the folders the tenant's policy allows (filesystem.workspace_roots)"
            )

    def _running_missions(self, tenant: str) -> set[str]:
        if self._running is None:
            self._running = {}
            for owner, mission in self.unfinished():
                self._running.setdefault(owner, set()).add(mission)
        return self._running.setdefault(tenant, set())

    def load(self, tenant: str, mission_id: str) -> MissionRun:
        """A run's state, folded from its stored facts."""
        return self._track(tenant, mission_id).run

    def history(self, tenant: str, mission_id: str) -> list[EventEnvelope]:
        """Every stored fact of a mission, oldest first (its version is the list's length)."""
        envelopes = self.store.mission_events(tenant, mission_id)
        if not envelopes:
            raise MissionNotFoundError(f"no mission '{mission_id}' for tenant '{tenant}'")
        return envelopes

    def _track(self, tenant: str, mission_id: str) -> _Tracked:
        envelopes = self.history(tenant, mission_id)
        facts = [run_fact(e) for e in envelopes if e.type in RUN_EVENT_TYPES]
        if not facts:
            raise MissionNotFoundError(f"no mission '{mission_id}' for tenant '{tenant}'")
        run = MissionRun.fold(facts)
        tracked = _Tracked(tenant, mission_id, run, len(envelopes))
        tracked.secrets = RunSecrets(self.secrets, tenant, run.secret_salt)
        return tracked

    def index(self) -> MissionIndex:
        """Every mission of the store and how it ended, brought up to date with the log."""
        for position, event in events_after(self.store, self._indexed):
            self._index.apply(event)
            self._indexed = position
        return self._index

    def unfinished(self) -> list[tuple[str, str]]:
        """(tenant, mission id) of every run the store holds that has not finished."""
        return self.index().unfinished()

    def cancel(self, tenant: str, mission_id: str, reason: str) -> bool:
        """Ask a run to stop; False when it had already finished or been cancelled."""
        driving = self._driving.get((tenant, mission_id))
        if driving is not None:
            # The drive owns the run's chain here: hand it the fact instead of writing beside it.
            events = decide.cancel(driving.run, reason) if not driving.inbox else []
            driving.inbox += events
            driving.wakeup.set()
            return bool(events)
        tracked = self._track(tenant, mission_id)
        events = decide.cancel(tracked.run, reason)
        if events:
            self._append(tenant, mission_id, tracked.version, events)
            # Driven by another replica: its owner stops the running steps now, not when they end.
            self.leases.announce_change(tenant, mission_id)
        return bool(events)

    def chain_changed(self, tenant: str, mission_id: str) -> None:
        """Another replica wrote to a mission this one drives (a cancel): its drive folds the
        chain again and, if that ended the run, stops its running steps."""
        driving = self._driving.get((tenant, mission_id))
        if driving is not None:
            driving.stale = True
            driving.wakeup.set()

    async def drive(self, tenant: str, mission_id: str, lease: Lease | None = None) -> MissionRun:
        """Run a mission to its end, resuming whatever a crash interrupted.

        With a shared `lease`, every append is fenced by it: once another replica holds the
        mission, the next append raises LeaseLostError and the drive stops, its attempts cancelled.
        """
        tracked = self._track(tenant, mission_id)
        tracked.lease = lease
        # Every secret the plan names is masked from the start, also after a restart.
        self._secrets_of(tracked).read(secret_names([s.parameters for s in tracked.run.plan.steps]))
        # Before anything runs here: the files of the steps another replica ran (a refusal is
        # why this replica cannot go on with them).
        snapshots = self.workspace_snapshots
        refusal = await snapshots.restore(tenant, mission_id, tracked.run) if snapshots else None
        self._driving[(tenant, mission_id)] = tracked
        processes = self._processes[(tenant, mission_id)] = self._supervisor(tracked)
        results: list[RunEvent] = decide.recover(tracked.run)
        results += decide.cancel(tracked.run, refusal) if refusal else []
        try:
            while True:
                tracked = self._commit(tracked, results)
                if tracked.run.finished:
                    return tracked.run
                results = await self._wait_for_results(tracked)
        finally:
            self._driving.pop((tenant, mission_id), None)
            if self.workspace_snapshots is not None:
                self.workspace_snapshots.forget(tenant, mission_id)
            for task in tracked.tasks:
                task.cancel()
            self._processes.pop((tenant, mission_id), None)
            await processes.close()

    @staticmethod
    def _supervisor(tracked: _Tracked) -> MissionProcessSupervisor:
        """A mission's supervisor of background programs; the handles its history recorded
        name programs that died with the executor that started them (a resumed mission)."""
        run = tracked.run
        started = [
            run.step(step.id).output
            for step in run.plan.steps
            if step.step_type == process_start.STEP_TYPE.name
        ]
        return MissionProcessSupervisor(tracked.mission_id, process_start.recorded_handles(started))

    def _commit(self, tracked: _Tracked, results: list[RunEvent]) -> _Tracked:
        """Record results and the steps they release in one append, then start those steps.

        If another writer (a cancel) appended first, the run is folded again from the store and
        the same results decided on it: results are facts about attempts that did run.
        """
        while True:
            if tracked.stale:
                tracked = self._folded_again(tracked)
            # Facts are applied before they are stored; if the append fails the run is folded
            # again from the store, which stays the source of truth.
            run = tracked.run
            for event in results:
                run.apply(event)
            limit = self.quotas.max_events_per_mission
            if tracked.version + len(results) >= limit and run.cancel_reason is None:
                # Over its event quota a mission is stopped, not cut: the end is still recorded.
                stop = decide.cancel(run, f"it reached its quota of {limit} events")
                for event in stop:
                    run.apply(event)
                results = results + stop
            secrets = self._secrets_of(tracked)
            limit_bytes = self.quotas.max_event_bytes
            released = [
                secrets.seal(self._tuned(tracked, e))
                for e in decide.next_events(run, self.clock(), limit_bytes)
            ]
            for event in released:
                run.apply(event)
            facts = results + released
            try:
                tracked.version = self._append(
                    tracked.tenant,
                    tracked.mission_id,
                    tracked.version,
                    facts,
                    self._fence(tracked, run),
                )
            except ChainConflictError:
                tracked = self._folded_again(tracked)
                continue
            if facts:
                for listener in self.listeners:
                    listener(run, facts)
            if run.finished and not self.leases.shared:
                self._running_missions(tracked.tenant).discard(tracked.mission_id)
            for event in released:
                if isinstance(event, StepStarted):
                    # The runner runs in its attempt's span: what it calls is traced beneath it.
                    with self.spans.attempt_scope(tracked.tenant, tracked.mission_id, event):
                        task = asyncio.ensure_future(self._attempt(tracked, event))
                    tracked.tasks[task] = (event.step_id, event.attempt)
            return tracked

    def _folded_again(self, tracked: _Tracked) -> _Tracked:
        """The drive's run folded again from the store (another writer appended), keeping what
        the drive holds: its lease, attempts in flight, inbox and secrets."""
        fresh = self._track(tracked.tenant, tracked.mission_id)
        fresh.lease = tracked.lease
        fresh.tasks, fresh.inbox, fresh.wakeup = tracked.tasks, tracked.inbox, tracked.wakeup
        fresh.secrets, fresh.bounds = tracked.secrets, tracked.bounds
        self._driving[(tracked.tenant, tracked.mission_id)] = fresh
        return fresh

    def _fence(self, tracked: _Tracked, run: MissionRun) -> FencedWrite | None:
        """The lease check of a drive's append (none in one process: nobody else writes)."""
        if tracked.lease is None or not self.leases.shared:
            return None
        return FencedWrite(tracked.lease, closes=run.finished)

    async def _wait_for_results(self, tracked: _Tracked) -> list[RunEvent]:
        """Results of finished attempts, facts handed in (a cancel), or a due retry."""
        waker = asyncio.ensure_future(tracked.wakeup.wait())
        try:
            if not tracked.tasks:
                wakeup = decide.next_wakeup(tracked.run)
                delay = 0.0 if wakeup is None else (wakeup - self.clock()).total_seconds()
                # Waiting out a retry's backoff is the product's behaviour, not synchronisation.
                timer = asyncio.ensure_future(self.sleep(max(delay, 0.0)))
                try:
                    await asyncio.wait([waker, timer], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    timer.cancel()
                done: set[asyncio.Task[Any]] = set()
            else:
                finished, _ = await asyncio.wait(
                    [*tracked.tasks, waker], return_when=asyncio.FIRST_COMPLETED
                )
                done = {task for task in finished if task is not waker}
        finally:
            waker.cancel()
        tracked.wakeup.clear()
        results: list[RunEvent] = tracked.inbox[:]
        tracked.inbox.clear()
        # Attempts that ended together are recorded in the plan's order, so a history replays
        # the same whatever order the event loop finished them in.
        order = tracked.run.order
        for task in sorted(done, key=lambda t: (order[tracked.tasks[t][0]], tracked.tasks[t][1])):
            step_id, attempt = tracked.tasks.pop(task)
            error = task.exception()
            secrets = self._secrets_of(tracked)
            limit = self.quotas.max_event_bytes
            # Sizes are measured after masking: the masked text is what would be recorded.
            if error is None:
                output = await self._keep_artifacts(tracked.tenant, secrets.output(task.result()))
                results += decide.step_finished(
                    tracked.run, step_id, attempt, output, self.clock(), limit
                )
            else:
                message = secrets.error(_describe(error))
                results += decide.step_failed(
                    tracked.run, step_id, attempt, message, self.clock(), max_event_bytes=limit
                )
        if done and self.workspace_snapshots is not None:
            # Recorded with the results: a new owner finds the files these steps left.
            results += await self.workspace_snapshots.save(
                tracked.tenant, tracked.mission_id, tracked.run, step_id
            )
        return results

    async def _keep_artifacts(self, tenant: str, output: Any) -> Any:
        """The output with its large values kept as artifacts and replaced by references.

        The artifacts are committed before the event that references them; hashing and writing
        tens of megabytes happens off the event loop, so other missions' steps go on meanwhile.
        """

        # Never more inline than half an event, so a referenced output always fits one.
        inline = min(self.artifact_inline_bytes, self.quotas.max_event_bytes // 2)

        def keep() -> Any:
            recorded, made = externalize(output, inline)
            if made:
                self.artifacts.put(tenant, made)
            return recorded

        return await asyncio.to_thread(keep)

    def _append(
        self,
        tenant: str,
        mission_id: str,
        version: int,
        events: list[RunEvent],
        lease: LeaseWrite | None = None,
    ) -> int:
        now = self.clock()
        stamped = zip(events, self.spans.traceparents(tenant, mission_id, events), strict=True)
        drafts = [
            EventDraft(
                id=str(uuid.uuid4()),
                tenant=tenant,
                mission_id=mission_id,
                service=SERVICE,
                aggregate_id=mission_id,
                aggregate_version=version + offset,
                type=event.type,
                version=run_event_version(event),
                occurred_at=now,
                payload=run_event_payload(event),
                traceparent=traceparent,
            )
            for offset, (event, traceparent) in enumerate(stamped, start=1)
        ]
        stored: list[EventEnvelope] = self.store.append(drafts, lease=lease)
        self.spans.recorded(stored, events)
        return version + len(stored)

    def _tuned(self, tracked: _Tracked, event: RunEvent) -> RunEvent:
        """An llm step's start with the tenant's promoted policy applied and recorded."""
        if self.step_policies is None or not isinstance(event, StepStarted):
            return event
        step = tracked.run.plan.step(event.step_id)
        if step.step_type not in TUNED_STEP_TYPES or event.inputs is None:
            return event
        found = self.step_policies(
            tracked.tenant, tracked.mission_id, tracked.run.plan.mission_name, step.id
        )
        if found is None:
            return event
        version, settings = found
        tenant_policy = self.policy_for(tracked.tenant) if self.policy_for else None
        if tracked.bounds is None:
            tracked.bounds = plan_bounds(tracked.run.plan, self._constraints())
        inputs, tuning = tuned_inputs(
            event.inputs, settings, version, tenant_policy, tracked.bounds, step.id
        )
        return event.model_copy(update={"inputs": inputs, "tuning": tuning})

    def _secrets_of(self, tracked: _Tracked) -> RunSecrets:
        if tracked.secrets is None:
            tracked.secrets = RunSecrets(self.secrets, tracked.tenant, tracked.run.secret_salt)
        return tracked.secrets

    def _check_secret_flows(self, tenant: str, step: PlannedStep, inputs: dict[str, Any]) -> None:
        """The tenant's policy on where the step's secrets go, checked before they are handed."""
        generator = self._constraints().get(step.step_type)
        if self.policy_for is not None and generator is not None and secret_names(inputs):
            check_secret_flows(self.policy_for(tenant), generator, step, inputs)

    def _constraints(self) -> Mapping[str, ConstraintGenerator]:
        if self._generators is None:
            self._generators = constraint_generators()
        return self._generators

    async def _attempt(self, tracked: _Tracked, started: StepStarted) -> Any:
        run = tracked.run
        step = run.plan.step(started.step_id)
        definition = self.registry.get(step.step_type)
        runner = getattr(definition, "run", None)
        if definition is None or runner is None:
            raise StepRunError(f"step type '{step.step_type}' has no runner in this deployment")
        if started.inputs is None:
            raise StepRunError(started.input_error or "its parameters were not rendered")
        # The runner gets exactly the inputs recorded in StepStarted, never a fresh rendering;
        # only its secret references are replaced, by the values whose digests were recorded.
        self._check_secret_flows(tracked.tenant, step, started.inputs)
        inputs = self._secrets_of(tracked).hand_over(started, started.inputs)
        if next(references(inputs), None) is not None:
            # The runner gets the content a recorded reference names, verified against its hash.
            inputs = await asyncio.to_thread(resolve, self.artifacts, tracked.tenant, inputs)
        params = parameters_of(definition.parameters, inputs)
        context = StepContext(
            tracked.tenant,
            tracked.mission_id,
            step.id,
            Path(run.workspace),
            float(step.timeout_seconds),
            settings=self.settings,
            memory=self.memory_for(tracked.tenant) if self.memory_for else None,
            policy=self.policy_for(tracked.tenant) if self.policy_for else None,
            sandbox=self.sandbox,
            processes=self._processes.get((tracked.tenant, tracked.mission_id)),
        )
        try:
            return await asyncio.wait_for(runner(params, context), timeout=step.timeout_seconds)
        except TimeoutError:
            raise StepRunError(f"did not finish within {step.timeout_seconds} s") from None


def _describe(error: BaseException) -> str:
    if isinstance(error, StepRunError):
        return str(error)
    return f"{type(error).__name__}: {error}"
