"""What step runners are given and how they fail: the context of one attempt, and the workspace."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from rustchain.domain.policy import Policy
from rustchain.domain.policy_checks import Refusal, check_path
from rustchain.steps.sandboxing import ProgramSandbox


class StepRunError(Exception):
    """A step attempt failed for a reason the user can act on; the message says what and where."""


class WorkspaceEscapeError(StepRunError):
    """A path that would leave the mission's workspace."""


class PolicyRefusedError(StepRunError):
    """A concrete value the tenant's policy refuses at run time (the verifier's rules again)."""


class MemoryClient(Protocol):
    """The tenant's memory, as the rag steps use it."""

    async def add(
        self, collection: str, content: str, doc_id: str | None, metadata: dict[str, Any]
    ) -> str:
        """Store a document; returns its id."""
        ...

    async def search(self, collection: str, query: str, limit: int) -> list[dict[str, Any]]:
        """Documents matching the query, best first."""
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

    def check(
        self, rule_check: Callable[..., Refusal | None], *values: Any, **options: Any
    ) -> None:
        """Refuse a concrete value the policy's rules refuse (no policy: nothing to check)."""
        if self.policy is None:
            return
        refusal = rule_check(self.policy, *values, **options)
        if refusal is not None:
            raise PolicyRefusedError(
                f"[{refusal.rule}] {refusal.explanation} (value: {refusal.value!r}); "
                "the tenant's policy refuses it at run time"
            )

    def path(self, written: str, *, write: bool) -> Path:
        """A path of the mission's workspace, checked against the policy, then resolved:
        `..`, absolute paths outside and symlinks that lead out fail."""
        self.check(check_path, written, write=write)
        return resolve_in_workspace(self.workspace, written)


Runner = Callable[[Any, StepContext], Awaitable[Any]]
"""Runs one attempt with validated parameters; returns the step's JSON-ready output."""


def resolve_in_workspace(workspace: Path, written: str) -> Path:
    """Resolve a written path inside the workspace, following symlinks, or refuse it."""
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


def relative(context: StepContext, path: Path) -> str:
    """How a workspace path is shown in outputs: relative to the workspace."""
    return str(path.relative_to(context.workspace.resolve())) or "."


def parameters_of(model: type[BaseModel], values: Mapping[str, Any]) -> BaseModel:
    """Rendered parameters validated again: references may have produced a wrong type."""
    try:
        return model.model_validate(dict(values))
    except ValueError as error:
        raise StepRunError(f"parameters after substituting references: {error}") from None


def read_workspace_file(
    context: StepContext, written: str, max_bytes: int, what: str = ""
) -> bytes:
    """The bytes of a workspace file a step reads, checked against the policy and a size cap."""
    target = context.path(written, write=False)
    if not target.is_file():
        raise StepRunError(f"{what}'{written}' is not a file in the workspace")
    with target.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise StepRunError(f"{what}'{written}' is larger than {max_bytes} bytes")
    return data


def relocate(
    context: StepContext,
    source_written: str,
    destination_written: str,
    *,
    overwrite: bool,
    source_is_written: bool,
    transfer: Callable[[Path, Path], object],
) -> dict[str, object]:
    """Copy or move a workspace file (into a folder keeps its name); refuse to replace one
    unless `overwrite`."""
    source = context.path(source_written, write=source_is_written)
    destination = context.path(destination_written, write=True)
    if not source.is_file():
        raise StepRunError(f"'{source_written}' is not a file in the workspace")
    if destination.is_dir():
        destination = context.path(f"{destination_written}/{source.name}", write=True)
    if destination.exists() and not overwrite:
        raise StepRunError(f"'{destination_written}' exists and overwrite is false")
    destination.parent.mkdir(parents=True, exist_ok=True)
    transfer(source, destination)
    return {"source": source_written, "destination": relative(context, destination)}


def source_text(context: StepContext, content: str | None, path: str | None, max_chars: int) -> str:
    """The text a parse step is given: inline `content`, or a workspace file's (both capped)."""
    if path is not None:
        text = read_workspace_file(context, path, max_chars).decode("utf-8", errors="replace")
    else:
        text = content or ""
    if len(text) > max_chars:
        raise StepRunError(f"the text to parse is larger than {max_chars} characters")
    return text


def workspace_dir(context: StepContext, written: str) -> Path:
    """A directory of the workspace a step reads, checked against the policy."""
    folder = context.path(written, write=False)
    if not folder.is_dir():
        raise StepRunError(f"'{written}' is not a directory in the workspace")
    return folder
