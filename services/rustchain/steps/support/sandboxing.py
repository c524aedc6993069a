"""The OS sandbox a step that runs a program goes through: the request, the result, the role.

The mechanisms (bubblewrap namespaces, Landlock) live in `platform/sandbox/`; steps know only this
interface, handed to them in their StepContext.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rustchain.domain.policy.model import CommandLimits

if TYPE_CHECKING:
    # asyncio's subprocess machinery is loaded when a program runs, not when a mission compiles.
    from rustchain.steps.support.programs import RunningProgram

SANDBOX_SETTING = "RUSTCHAIN_SANDBOX"
"""The setting that chooses the mechanism: auto, bubblewrap, landlock or none."""

SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
"""The PATH every sandboxed program gets (the sandbox shows only /usr, so nothing else is there)."""


@dataclass(frozen=True)
class NetworkGrant:
    """Where a program may connect: only through the egress proxy, to these hosts and ports,
    never to a denied host (or a name that resolves to a denied address)."""

    hosts: Sequence[str]
    ports: Sequence[int]
    denied_hosts: Sequence[str]


@dataclass(frozen=True)
class SandboxedProgram:
    """One program to run confined: what it runs, where, with what, and within which bounds."""

    argv: Sequence[str]
    workspace: Path
    cwd: Path  # inside the workspace (already checked)
    environment: Mapping[str, str]  # already scrubbed; the mechanism adds TMPDIR
    timeout_seconds: float
    max_output_bytes: int
    limits: CommandLimits = field(default_factory=CommandLimits)
    network: NetworkGrant | None = None  # None: no network at all
    # Folders outside /usr the program may read (a toolchain's installation), never write.
    read_only: Sequence[Path] = ()


@dataclass(frozen=True)
class ProgramResult:
    """How a program ended and what it wrote (each stream at most max_output_bytes)."""

    status: int
    stdout: bytes
    stderr: bytes
    # The mechanism's set-up: from starting it to the program's exec (None: not measured).
    setup_seconds: float | None = None


class ProgramTimedOutError(Exception):
    """The program (or something it started) was still running at the timeout; all was killed."""


class ProgramOutputTooLargeError(Exception):
    """The program wrote more than max_output_bytes; all it started was killed."""


class SandboxRefusedError(Exception):
    """The mechanism cannot give this program what it asks (a network grant it cannot enforce)."""


class ProgramSandbox(Protocol):
    """Runs programs so that they reach nothing outside their workspace, and end with the step."""

    @property
    def name(self) -> str:
        """The mechanism, as `rustchain serve` and `rustchain up` name it."""
        ...

    @property
    def unavailable(self) -> str | None:
        """Why no program can be confined here (then `run` must not be called), or None."""
        ...

    async def run(self, program: SandboxedProgram) -> ProgramResult:
        """Run the program confined; every process it started is gone when this returns."""
        ...

    async def start(self, program: SandboxedProgram) -> RunningProgram:
        """Start the program confined and return while it runs (`timeout_seconds` and
        `max_output_bytes` do not apply: the caller reads its pipes and ends it)."""
        ...
