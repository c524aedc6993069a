"""What each service of a deployment is built of: `HOSTS[name]` makes its servicers, what runs
once it listens (the executor's resume, the trainer's consumer) and what it releases on stop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rustchain.bootstrap.executor import build_executor, tenant_policies
from rustchain.bootstrap.stores import open_memory_store, open_trajectory_store
from rustchain.bootstrap.trainer_runs import (
    deployment_optimiser,
    open_promoted_policies,
    open_trainer_events,
)
from rustchain.executor.admission import Admission
from rustchain.executor.driver import MissionDriver
from rustchain.executor.servicer import ExecutorServicer
from rustchain.executor.servicer import binding as executor_binding
from rustchain.memory.servicer import MemoryServicer
from rustchain.memory.servicer import binding as memory_binding
from rustchain.planner.application import PlannerApplication
from rustchain.planner.clients import GrpcExecutor, GrpcVerifier
from rustchain.planner.servicer import PlannerServicer
from rustchain.planner.servicer import binding as planner_binding
from rustchain.platform.credentials.signing_keys import (
    VERDICT_KEYS,
    load_private_key,
    load_public_key,
    token_public_key,
)
from rustchain.platform.deployment.endpoints import configured_endpoints, deployment_nats_url
from rustchain.platform.grpc.client import open_channel
from rustchain.platform.grpc.memory_client import GrpcMemoryClient
from rustchain.platform.grpc.server import ServiceBinding
from rustchain.platform.nats.jetstream import StreamUsageReader
from rustchain.platform.nats.server import NATS_URL_VARIABLE
from rustchain.platform.sandbox.selection import (
    SandboxSettingError,
    choose_sandbox,
    describe,
)
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.platform.storage.home import rustchain_home
from rustchain.platform.storage.memory_store import TenantMemory
from rustchain.platform.storage.mission_leases import (
    ReplicaSettingError,
    ReplicaSettings,
    describe_leases,
)
from rustchain.platform.telemetry.sandbox_timing import TimedSandbox
from rustchain.steps import default_registry
from rustchain.steps.support.runtime import MemoryClient
from rustchain.trainer.consuming import consume_until
from rustchain.trainer.servicer import TrainerServicer
from rustchain.trainer.servicer import binding as trainer_binding
from rustchain.verifier.application import VerifierApplication
from rustchain.verifier.servicer import VerifierServicer
from rustchain.verifier.servicer import binding as verifier_binding

Closer = Callable[[], Awaitable[None]]


class ServeError(RuntimeError):
    """A service cannot be set up: a missing endpoint, an unusable store."""


@dataclass
class Hosted:
    """A service's servicers, what to do once it listens, and what to release when it stops."""

    bindings: list[ServiceBinding]
    on_started: Callable[[], object] = lambda: None
    closers: list[Closer] = field(default_factory=list)
    # What the service says about itself before it serves (the executor: its sandbox).
    lines: list[str] = field(default_factory=list)

    async def close(self) -> None:
        """Release everything, last opened first."""
        for closer in reversed(self.closers):
            await closer()


def _sync(function: Callable[[], object]) -> Closer:
    async def close() -> None:
        function()

    return close


def _store(name: str, environ: Mapping[str, str]) -> EventStoreSettings:
    return EventStoreSettings.from_environ(name, environ)


def _missing(variable: str, path: Path) -> str:
    return (
        f"the deployment authenticates its calls but no verdict key was found: set {variable}"
        f" (or {variable}_FILE), or put it at {path} (`rustchain up` makes it)"
    )


def _endpoint(service: str, given: Mapping[str, str], home: Path, env: Mapping[str, str]) -> str:
    if service in given:
        return given[service]
    configured = configured_endpoints(home, env)
    if configured is None or service not in configured.services:
        raise ServeError(f"no endpoint for the {service} service: pass --{service} HOST:PORT")
    return configured.target(service)


def host_verifier(environ: Mapping[str, str], peers: Mapping[str, str]) -> Hosted:
    """The verifier on its own event store, with each tenant's policy from the home."""
    home = rustchain_home(environ)
    # The verifier alone holds the verdict key's private half: what it signs, the executor trusts.
    verdict_key = load_private_key(home, VERDICT_KEYS, environ)
    if verdict_key is None and token_public_key(home, environ) is not None:
        raise ServeError(_missing(VERDICT_KEYS.private_variable, VERDICT_KEYS.private_path(home)))
    store = open_event_store(_store("verifier", environ))
    application = VerifierApplication(store, tenant_policies(environ), signing_key=verdict_key)
    servicer = VerifierServicer(application)
    return Hosted([verifier_binding(servicer)], closers=[_sync(store.close)])


def host_memory(environ: Mapping[str, str], peers: Mapping[str, str]) -> Hosted:
    """The memory service on the deployment's memory store: PostgreSQL with
    RUSTCHAIN_DATABASE_URL (any number of replicas share it), else SQLite under the home."""
    store = open_memory_store(environ)
    return Hosted([memory_binding(MemoryServicer(store))], closers=[_sync(store.close)])


def host_executor(environ: Mapping[str, str], peers: Mapping[str, str]) -> Hosted:
    """The executor on its event store; rag steps use the memory service when one is named."""
    home = rustchain_home(environ)
    # Public keys only: an executor (or a step that takes it over) cannot sign a verdict.
    verdict_key = load_public_key(home, VERDICT_KEYS, environ)
    if verdict_key is None and token_public_key(home, environ) is not None:
        raise ServeError(_missing(VERDICT_KEYS.public_variable, VERDICT_KEYS.public_path(home)))
    try:
        ReplicaSettings.from_environ(environ)  # refused before any store is opened
    except ReplicaSettingError as error:
        raise ServeError(str(error)) from None
    store = open_event_store(_store("executor", environ))
    closers: list[Closer] = [_sync(store.close)]
    memory_for: Callable[[str], MemoryClient]
    try:
        endpoint = _endpoint("memory", peers, home, environ)
    except ServeError:
        local = open_memory_store(environ)
        closers.append(_sync(local.close))
        memory_for = lambda tenant: TenantMemory(local, tenant)  # noqa: E731
    else:
        channel = open_channel(endpoint)
        closers.append(channel.close)
        memory_for = lambda tenant: GrpcMemoryClient(channel, endpoint, tenant)  # noqa: E731
    try:
        sandbox = choose_sandbox(environ)
    except SandboxSettingError as error:
        raise ServeError(str(error)) from None
    nats_url = deployment_nats_url(home, environ)
    reader = StreamUsageReader(nats_url) if nats_url is not None else None
    admission = Admission(verdict_key, reader.usage if reader is not None else None)
    # The tenants' promoted llm-step policies, from the trainer's store: the same home as this
    # executor's under `rustchain up`, the same database with RUSTCHAIN_DATABASE_URL.
    learned = open_promoted_policies(environ)
    closers.append(_sync(learned.store.close))
    application = build_executor(
        environ,
        store,
        memory_for=memory_for,
        sandbox=TimedSandbox(sandbox),
        admission=admission,
        step_policies=learned.step_policy,
    )
    driver = MissionDriver(application)
    closers.append(driver.stop)
    if reader is not None:
        closers.append(reader.close)
    servicer = ExecutorServicer(driver)
    return Hosted(
        [executor_binding(servicer)],
        driver.resume_unfinished,
        closers,
        [describe(sandbox), describe_leases(application.leases)],
    )


def host_planner(environ: Mapping[str, str], peers: Mapping[str, str]) -> Hosted:
    """The planner, calling the verifier and the executor over gRPC."""
    home = rustchain_home(environ)
    verifier_at = _endpoint("verifier", peers, home, environ)
    executor_at = _endpoint("executor", peers, home, environ)
    verifier_channel, executor_channel = open_channel(verifier_at), open_channel(executor_at)
    application = PlannerApplication(
        default_registry(),
        GrpcVerifier(verifier_channel, verifier_at),
        GrpcExecutor(executor_channel, executor_at),
    )
    servicer = PlannerServicer(application)
    return Hosted(
        [planner_binding(servicer)], closers=[verifier_channel.close, executor_channel.close]
    )


def host_trainer(environ: Mapping[str, str], peers: Mapping[str, str]) -> Hosted:
    """The trainer: its consumer turns finished missions into trajectories, served over gRPC;
    with RUSTCHAIN_DATABASE_URL any number of trainers share the durable consumer and the store."""
    url = deployment_nats_url(rustchain_home(environ), environ)
    if url is None:
        raise ServeError(f"the trainer reads JetStream: set {NATS_URL_VARIABLE}")
    store = open_trajectory_store(environ)
    events = open_trainer_events(environ)
    optimise = deployment_optimiser(environ, events, store)
    stop = asyncio.Event()
    consuming: list[asyncio.Task[None]] = []

    def start_consumer() -> None:
        consuming.append(asyncio.ensure_future(consume_until(url, store, stop)))

    async def stop_consumer() -> None:
        stop.set()
        await asyncio.gather(*consuming)

    return Hosted(
        [trainer_binding(TrainerServicer(store, events, optimise))],
        start_consumer,
        [_sync(store.close), _sync(events.store.close), stop_consumer],
    )


HOSTS: dict[str, Callable[[Mapping[str, str], Mapping[str, str]], Hosted]] = {
    "planner": host_planner,
    "verifier": host_verifier,
    "executor": host_executor,
    "memory": host_memory,
    "trainer": host_trainer,
}
