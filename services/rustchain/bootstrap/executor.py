"""The executor application, built from the settings with any part replaced by what is given."""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from rustchain.bootstrap.stores import open_store
from rustchain.domain.access.quotas import TenantQuotas
from rustchain.domain.language.secret_refs import SecretReader
from rustchain.domain.language.step_types import StepTypeRegistry
from rustchain.domain.policy.model import Policy
from rustchain.executor.admission import Admission
from rustchain.executor.application import (
    Clock,
    EventListener,
    ExecutorApplication,
    Sleep,
    StepPolicySource,
    utc_now,
)
from rustchain.platform.sandbox.selection import LazySandbox
from rustchain.platform.storage.event_store import EventStore, RecorderEventStore
from rustchain.platform.storage.home import rustchain_home
from rustchain.platform.storage.memory_store import SqliteMemoryStore, TenantMemory
from rustchain.platform.storage.mission_leases import (
    LocalMissionLeases,
    MissionLeases,
    ReplicaSettings,
    open_mission_leases,
)
from rustchain.platform.storage.secret_store import FileSecretStore
from rustchain.steps import default_registry
from rustchain.steps.support.runtime import MemoryClient
from rustchain.steps.support.sandboxing import ProgramSandbox
from rustchain.steps.support.toolchain_runs import TOOLCHAIN_SETTINGS_PREFIX
from rustchain.verifier.policy_files import POLICIES_FOLDER, TenantPolicies

LLM_SETTINGS_PREFIX = "RUSTCHAIN_LLM_"


class _FromSettings(enum.Enum):
    POLICIES = "each tenant's policy file under the home"


TENANT_POLICY_FILES = _FromSettings.POLICIES
"""The default of `build_executor(policy_for=...)`: each tenant's policy from the home."""


def step_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The settings steps read: the llm and agent steps' (RUSTCHAIN_LLM_*), the toolchains'."""
    prefixes = (LLM_SETTINGS_PREFIX, TOOLCHAIN_SETTINGS_PREFIX)
    return {k: v for k, v in environ.items() if k.startswith(prefixes)}


def tenant_policies(environ: Mapping[str, str]) -> TenantPolicies:
    """Each tenant's policy: $RUSTCHAIN_HOME/policies/<tenant>.yaml, else the default policy."""
    return TenantPolicies(rustchain_home(environ) / POLICIES_FOLDER)


def build_executor(
    environ: Mapping[str, str],
    store: EventStore,
    *,
    registry: StepTypeRegistry | None = None,
    workspaces: Path | None = None,
    memory_for: Callable[[str], MemoryClient] | None = None,
    policy_for: Callable[[str], Policy] | _FromSettings | None = TENANT_POLICY_FILES,
    listener: EventListener | None = None,
    sandbox: ProgramSandbox | None = None,
    secrets: SecretReader | None = None,
    admission: Admission | None = None,
    quotas: TenantQuotas | None = None,
    clock: Clock = utc_now,
    sleep: Sleep = asyncio.sleep,
    step_policies: StepPolicySource | None = None,
    leases: MissionLeases | None = None,
) -> ExecutorApplication:
    """The executor application on `store`, each part built from the settings unless given.

    Without `memory_for`, rag steps have no memory (a run that needs one passes it). With
    `policy_for=None` the runners check no tenant policy: only tests of the runtime's own
    containment (the verifier bypassed) ask for that. `step_policies` gives the tenant's
    promoted llm-step settings the trainer learned (none: each step as written). `leases`
    decide which replica drives which mission: shared leases in the store's database on
    PostgreSQL (`RUSTCHAIN_DATABASE_URL`), this process alone otherwise.
    """
    home = rustchain_home(environ)
    if policy_for is TENANT_POLICY_FILES:
        policy_for = tenant_policies(environ)
    return ExecutorApplication(
        store,
        registry if registry is not None else default_registry(),
        workspaces if workspaces is not None else home / "workspaces",
        memory_for=memory_for,
        clock=clock,
        listener=listener,
        settings=step_settings(environ),
        policy_for=policy_for,
        quotas=quotas if quotas is not None else TenantQuotas.from_settings(environ),
        sandbox=sandbox if sandbox is not None else LazySandbox(environ),
        secrets=secrets if secrets is not None else FileSecretStore.from_environ(environ, home),
        admission=admission,
        sleep=sleep,
        step_policies=step_policies,
        leases=leases if leases is not None else mission_leases(environ, store),
    )


def mission_leases(environ: Mapping[str, str], store: EventStore) -> MissionLeases:
    """The store's mission leases for this replica (`RUSTCHAIN_EXECUTOR_ID`, ...)."""
    replica = ReplicaSettings.from_environ(environ)
    if isinstance(store, RecorderEventStore):
        return open_mission_leases(store, replica)
    return LocalMissionLeases(replica)


@contextlib.contextmanager
def open_executor(
    environ: Mapping[str, str],
    *,
    local_memory: bool = False,
    policy_for: Callable[[str], Policy] | _FromSettings | None = TENANT_POLICY_FILES,
    listener: EventListener | None = None,
) -> Iterator[ExecutorApplication]:
    """The executor application on the store the settings name, closed afterwards; with
    `local_memory`, rag steps use the home's SQLite memory (as `rustchain run` does)."""
    store = open_store("executor", environ)
    with contextlib.ExitStack() as closing:
        closing.callback(store.close)
        memory_for: Callable[[str], MemoryClient] | None = None
        if local_memory:
            memory = SqliteMemoryStore(rustchain_home(environ) / "memory.sqlite3")
            closing.callback(memory.close)
            memory_for = lambda tenant: TenantMemory(memory, tenant)  # noqa: E731
        yield build_executor(
            environ, store, memory_for=memory_for, policy_for=policy_for, listener=listener
        )
