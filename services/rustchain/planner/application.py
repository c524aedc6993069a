"""The planner's use case: mission text in; compiled, bound, verified and started, or refused."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from rustchain.domain.language.step_types import StepTypeRegistry
from rustchain.domain.plans.bindings import VariableBindingError, bind_variables
from rustchain.domain.plans.compiler import Compilation, compile_mission
from rustchain.domain.plans.plan import Plan


@dataclass(frozen=True)
class Problem:
    """One problem found in a submission; line and column are 0 when it has no position."""

    file: str
    line: int
    column: int
    severity: str
    message: str
    rule: str = ""


@dataclass(frozen=True)
class VerdictSummary:
    """What the planner needs of the verifier's verdict."""

    status: str
    safe: bool
    findings: list[Problem] = field(default_factory=list)
    # The verifier's signed grant for a SAFE plan (empty when the deployment signs nothing).
    token: str = ""


class Verifier(Protocol):
    """Proves a plan safe for a tenant, recording the verdict for the mission."""

    async def verify(self, tenant: str, plan: Plan, mission_id: str) -> VerdictSummary:
        """The verdict on the plan."""
        ...


class Executor(Protocol):
    """Starts a verified plan."""

    async def start(
        self,
        tenant: str,
        plan: Plan,
        variables: dict[str, Any],
        mission_id: str,
        workspace: str,
        verdict_token: str = "",
    ) -> str:
        """The id of the started mission."""
        ...


@dataclass(frozen=True)
class Validation:
    """A compiled mission with its bound variables, or every problem found."""

    compilation: Compilation
    problems: list[Problem]
    variables: dict[str, Any] | None

    @property
    def valid(self) -> bool:
        """True when the mission compiled and its variables bound."""
        return self.compilation.plan is not None and self.variables is not None


@dataclass(frozen=True)
class Submission:
    """The outcome of a submission: a started mission, or why not."""

    accepted: bool
    problems: list[Problem]
    mission_id: str = ""
    plan: Plan | None = None
    verdict_status: str = ""


def validate(
    text: bytes, file: str, variables: Mapping[str, str], registry: StepTypeRegistry
) -> Validation:
    """Compile the mission and bind the given variables, reporting every problem."""
    compilation = compile_mission(text, file, registry)
    problems = [
        Problem(file, d.position.line, d.position.column, d.severity.value, d.message)
        for d in compilation.diagnostics
    ]
    if compilation.plan is None:
        return Validation(compilation, problems, None)
    try:
        bound = bind_variables(compilation.plan.variables, variables)
    except VariableBindingError as error:
        problems += [Problem(file, 0, 0, "error", problem) for problem in error.problems]
        return Validation(compilation, problems, None)
    return Validation(compilation, problems, bound)


class PlannerApplication:
    """Submits missions: validate, verify, then start on the executor."""

    def __init__(self, registry: StepTypeRegistry, verifier: Verifier, executor: Executor) -> None:
        self.registry = registry
        self.verifier = verifier
        self.executor = executor

    async def submit(
        self,
        tenant: str,
        text: bytes,
        file: str,
        variables: Mapping[str, str],
        workspace: str = "",
    ) -> Submission:
        """Start the mission when it is valid and proven safe; otherwise say why not."""
        checked = validate(text, file, variables, self.registry)
        plan = checked.compilation.plan
        if plan is None or checked.variables is None:
            return Submission(False, checked.problems)
        mission_id = uuid.uuid4().hex
        verdict = await self.verifier.verify(tenant, plan, mission_id)
        problems = checked.problems + verdict.findings
        if not verdict.safe:
            return Submission(False, problems, plan=plan, verdict_status=verdict.status)
        started = await self.executor.start(
            tenant, plan, checked.variables, mission_id, workspace, verdict.token
        )
        return Submission(True, problems, started, plan, verdict.status)
