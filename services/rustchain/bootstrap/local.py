"""The planner, verifier and executor applications in one process: `rustchain run` without a
deployment. The planner calls the others through in-process clients instead of gRPC, so a local
run takes the same use-case path as a submission to the services (compile, bind, verify and
record, start), with no ports and no servers."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rustchain.bootstrap.executor import build_executor, tenant_policies
from rustchain.bootstrap.stores import open_store
from rustchain.bootstrap.trainer_runs import open_trainer_events
from rustchain.domain.plans.plan import Plan
from rustchain.domain.plans.verdict import Finding, Verdict
from rustchain.domain.policy.model import Policy
from rustchain.executor.admission import StartMission
from rustchain.executor.application import EventListener, ExecutorApplication
from rustchain.planner.application import PlannerApplication, Problem, VerdictSummary
from rustchain.platform.storage.home import rustchain_home
from rustchain.platform.storage.memory_store import SqliteMemoryStore, TenantMemory
from rustchain.steps import default_registry
from rustchain.verifier.application import VerifierApplication


def _problem(finding: Finding, undecided: bool) -> Problem:
    """A finding as the planner reports it (the message `rustchain verify` prints after the
    position and severity)."""
    where = f"step '{finding.step_id}'" if finding.step_id else "the mission"
    subject = f"{where}: {finding.field}" if finding.field else where
    kind = "undecided: " if undecided else ""
    message = f"{kind}[{finding.rule}] {subject} {finding.explanation}"
    if finding.counterexample:
        shown = ", ".join(
            f"{name}={json.dumps(value, ensure_ascii=False)}"
            for name, value in finding.counterexample.items()
        )
        message += f" (counterexample: {shown})"
    return Problem(finding.file, finding.line, finding.column, "error", message, finding.rule)


@dataclass
class InProcessVerifier:
    """The verifier application as the planner's Verifier, called in this process."""

    application: VerifierApplication
    # Every verdict given, in order: the caller in this process may show one whole.
    verdicts: list[Verdict] = field(default_factory=list)

    async def verify(self, tenant: str, plan: Plan, mission_id: str) -> VerdictSummary:
        """The verdict on the plan, recorded for the mission by the verifier application."""
        verification = await self.application.verify(tenant, plan, mission_id)
        verdict = verification.verdict
        self.verdicts.append(verdict)
        findings = [_problem(f, False) for f in verdict.violations]
        findings += [_problem(f, True) for f in verdict.undecided]
        return VerdictSummary(
            verdict.status.value, verdict.safe, findings, verification.grant_token
        )


@dataclass(frozen=True)
class InProcessExecutor:
    """The executor application as the planner's Executor, called in this process.

    A mission's `config.workspace` is resolved beside its file (`base`), as `rustchain run` does
    before it submits to a deployment.
    """

    application: ExecutorApplication
    base: Path | None = None

    async def start(
        self,
        tenant: str,
        plan: Plan,
        variables: dict[str, Any],
        mission_id: str,
        workspace: str,
        verdict_token: str = "",
    ) -> str:
        """Admit and record the start, its lease taken by this process; the caller drives it."""
        folder = Path(workspace) if workspace else None
        if folder is None and plan.config.workspace is not None and self.base is not None:
            folder = (self.base / plan.config.workspace).resolve()
        command = StartMission(tenant, plan, variables, mission_id, folder, verdict_token)
        return await self.application.admit_and_start(command, take=True)


@dataclass(frozen=True)
class LocalDeployment:
    """The three applications of a local run, wired as the services are."""

    planner: PlannerApplication
    verifier: InProcessVerifier
    executor: ExecutorApplication


@contextlib.contextmanager
def open_local_deployment(
    environ: Mapping[str, str],
    mission_file: str,
    *,
    policy_for: Callable[[str], Policy] | None = None,
    listener: EventListener | None = None,
) -> Iterator[LocalDeployment]:
    """The planner over in-process verifier and executor applications, on the home's stores and
    memory (closed afterwards); `policy_for` replaces each tenant's policy (`run --policy`)."""
    policies = policy_for if policy_for is not None else tenant_policies(environ)
    with contextlib.ExitStack() as closing:
        verifier_store = open_store("verifier", environ)
        closing.callback(verifier_store.close)
        executor_store = open_store("executor", environ)
        closing.callback(executor_store.close)
        memory = SqliteMemoryStore(rustchain_home(environ) / "memory.sqlite3")
        closing.callback(memory.close)
        # The tenant's promoted llm-step policies, learned by the trainer (docs/trainer.md).
        learned = open_trainer_events(environ)
        closing.callback(learned.store.close)
        executor = build_executor(
            environ,
            executor_store,
            memory_for=lambda tenant: TenantMemory(memory, tenant),
            policy_for=policies,
            listener=listener,
            step_policies=learned.step_policy,
        )
        verifier = InProcessVerifier(VerifierApplication(verifier_store, policies))
        planner = PlannerApplication(
            default_registry(),
            verifier,
            InProcessExecutor(executor, Path(mission_file).parent),
        )
        yield LocalDeployment(planner, verifier, executor)
