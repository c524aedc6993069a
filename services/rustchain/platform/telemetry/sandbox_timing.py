"""What sandboxing costs, per program and mechanism: the set-up the mechanism measured (from
starting it to the program's exec: the sandbox's overhead) and the program's whole wall time."""

from __future__ import annotations

import time

from rustchain.platform.telemetry.instruments import instruments
from rustchain.steps.support.programs import RunningProgram
from rustchain.steps.support.sandboxing import ProgramResult, ProgramSandbox, SandboxedProgram


class TimedSandbox:
    """A sandbox whose runs are recorded in `rustchain.sandbox.run.duration` (wall time) and
    `rustchain.sandbox.setup.duration` (the overhead: start of the mechanism to the program's
    exec, for each run that reached its exec or ended)."""

    def __init__(self, inner: ProgramSandbox) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        """The mechanism's name."""
        return self.inner.name

    @property
    def unavailable(self) -> str | None:
        """Why the mechanism cannot confine, or None."""
        return self.inner.unavailable

    async def run(self, program: SandboxedProgram) -> ProgramResult:
        """Run through the mechanism, timing it (failed and timed-out runs included)."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            result = await self.inner.run(program)
            if result.setup_seconds is not None:
                instruments().sandbox_setup_duration.record(
                    result.setup_seconds, {"mechanism": self.inner.name.split()[0]}
                )
            return result
        except BaseException as error:
            outcome = type(error).__name__
            raise
        finally:
            instruments().sandbox_run_duration.record(
                time.perf_counter() - started,
                {"mechanism": self.inner.name.split()[0], "outcome": outcome},
            )

    async def start(self, program: SandboxedProgram) -> RunningProgram:
        """Start through the mechanism (a background program's run is not timed)."""
        return await self.inner.start(program)
