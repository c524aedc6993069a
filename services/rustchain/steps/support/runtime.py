"""What step runners are given and how they fail: the context of one attempt, and the workspace."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from rustchain.domain.policy.checks import Refusal, check_path
from rustchain.domain.policy.model import Policy
from rustchain.steps.support.background import MissionProcesses
from rustchain.steps.support.errors import PolicyRefusedError, StepRunError, WorkspaceEscapeError
from rustchain.steps.support.sandboxing import ProgramSandbox
from rustchain.steps.support.workspace_files import read_bytes

__all__ = [
    "MemoryClient",
    "PolicyRefusedError",
    "Runner",
    "StepContext",
    "StepRunError",
    "WorkspaceEscapeError",
    "parameters_of",
    "read_workspace_file",
    "resolve_in_workspace",
]


class MemoryClient(Protocol):
    """The tenant's memory, as the rag and embedding steps use it."""

    async def add(
        self, collection: str, content: str, doc_id: str | None, metadata: dict[str, Any]
    ) -> str:
        """Store a document; returns its id."""
        ...

    async def search(self, collection: str, query: str, limit: int) -> list[dict[str, Any]]:
        """Documents matching the query, best first."""
        ...

    async def add_vector(
        self,
        collection: str,
        doc_id: str | None,
        vector: list[float],
        content: str,
        metadata: dict[str, Any],
    ) -> str:
        """Store an embedding vector with its text; returns its id."""
        ...

    async def nearest(
        self, collection: str, vector: list[float], limit: int
    ) -> list[dict[str, Any]]:
        """Stored vectors closest to `vector` (`score`: cosine similarity), best first."""
        ...


@dataclass(frozen=True)
class StepContext:
    """Everything one attempt of a step may use; runners touch nothing else."""

    tenant: str
    mission_id: str
    step_id: str
    workspace: Path
    timeout_seconds: float
    settings: Mapping[str, str] = field(default_factory=dict)
    memory: MemoryClient | None = None
    policy: Policy | None = None
    # Every runner that runs a program goes through it (None: programs are refused unless the
    # policy says `commands.sandbox: optional`).
    sandbox: ProgramSandbox | None = None
    # The mission's background programs (process_start, process_kill); None: this executor
    # keeps none, and those steps are refused.
    processes: MissionProcesses | None = None

    def check(
        self, rule_check: Callable[..., Refusal | None], *values: Any, **options: Any
    ) -> None:
        """Refuse a concrete value the policy's rules refuse (no policy: nothing to check)."""
        if self.policy is not None:
            _raise(rule_check(self.policy, *values, **options))

    @property
    def enforced_policy(self) -> Policy:
        """The tenant's policy, or the default one when the executor was given none."""
        return self.policy if self.policy is not None else default_policy()

    def enforce(
        self, rule_check: Callable[..., Refusal | None], *values: Any, **options: Any
    ) -> None:
        """Refuse what `enforced_policy`'s rules refuse: for the checks the runtime makes even
        on a run no verifier saw (environment names, output bounds)."""
        _raise(rule_check(self.enforced_policy, *values, **options))

    def path(self, written: str, *, write: bool) -> Path:
        """A path of the mission's workspace, checked against the policy, then resolved:
        `..`, absolute paths outside and symlinks that lead out fail. Only for a folder handed
        to a sandboxed program: a step that opens files opens them with `workspace_files`,
        at the moment of use (a resolved path can be swapped for a link before it is used)."""
        self.check(check_path, written, write=write)
        return resolve_in_workspace(self.workspace, written)


@cache
def default_policy() -> Policy:
    """The documented default policy (built once)."""
    return Policy()


def _raise(refusal: Refusal | None) -> None:
    if refusal is not None:
        raise PolicyRefusedError(
            f"[{refusal.rule}] {refusal.explanation} (value: {refusal.value!r}); "
            "the tenant's policy refuses it at run time"
        )


Runner = Callable[[Any, StepContext], Awaitable[Any]]
"""Runs one attempt with validated parameters; returns the step's JSON-ready output."""


def resolve_in_workspace(workspace: Path, written: str) -> Path:
    """Resolve a written path inside the workspace, following symlinks, or refuse it."""
    if "\x00" in written:
        raise StepRunError(f"path {written!r} holds a NUL byte, which no path may")
    root = workspace.resolve()
    candidate = Path(written)
    if not candidate.is_absolute():
        candidate = root / candidate
    resolved = Path(os.path.realpath(candidate))
    if resolved != root and not resolved.is_relative_to(root):
        raise WorkspaceEscapeError(
            f"path '{written}' leaves the mission's workspace ({root}); "
            "file steps may only use paths inside it"
        )
    return resolved


def parameters_of(model: type[BaseModel], values: Mapping[str, Any]) -> BaseModel:
    """Rendered parameters validated again: references may have produced a wrong type, and a
    step RustChain would load with parameters it cannot run with (a warning then) fails here."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as error:
        problems = "; ".join(_problem(e) for e in error.errors(include_url=False))
        raise StepRunError(f"cannot run with these parameters: {problems}") from None
    except ValueError as error:
        raise StepRunError(f"cannot run with these parameters: {error}") from None


def _problem(error: ErrorDetails) -> str:
    where = ".".join(str(part) for part in error["loc"])
    if error["type"] == "missing":
        return f"missing '{where}'"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"'{where}': {message}" if where else message


def read_workspace_file(
    context: StepContext, written: str, max_bytes: int, what: str = "path "
) -> bytes:
    """The bytes of a workspace file a step reads (`what`: the parameter, then a space),
    checked against the policy and a size cap, opened beneath the workspace."""
    return read_bytes(context, written, max_bytes, what.strip() or "path")
