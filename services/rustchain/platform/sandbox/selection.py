"""Which sandbox mechanism an executor uses: RUSTCHAIN_SANDBOX=auto|bubblewrap|landlock|none.

`auto` runs bubblewrap once (`bwrap ... true`), then asks the kernel for its Landlock ABI; the
first that works is the one. When none does, command steps are refused (unless a tenant's policy
says `commands.sandbox: optional`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from rustchain.platform.sandbox import bubblewrap, landlock_sandbox
from rustchain.platform.sandbox.egress import installed_egress_proxy
from rustchain.steps.support.programs import RunningProgram
from rustchain.steps.support.sandboxing import (
    SANDBOX_SETTING,
    ProgramResult,
    ProgramSandbox,
    SandboxedProgram,
)

MECHANISMS = ("auto", "bubblewrap", "landlock", "none")


class SandboxSettingError(ValueError):
    """RUSTCHAIN_SANDBOX names no mechanism."""


class UnavailableSandbox:
    """No mechanism works here: `unavailable` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    @property
    def name(self) -> str:
        """none."""
        return "none"

    @property
    def unavailable(self) -> str | None:
        """Why no program can be confined."""
        return self.reason

    async def run(self, program: SandboxedProgram) -> ProgramResult:
        """Never confines: callers check `unavailable` first."""
        raise RuntimeError(f"no sandbox: {self.reason}")

    async def start(self, program: SandboxedProgram) -> RunningProgram:
        """Never confines: callers check `unavailable` first."""
        raise RuntimeError(f"no sandbox: {self.reason}")


def choose_sandbox(environ: Mapping[str, str]) -> ProgramSandbox:
    """The mechanism the setting names, probed; an UnavailableSandbox when none works."""
    wanted = (environ.get(SANDBOX_SETTING) or "auto").strip().lower()
    if wanted not in MECHANISMS:
        raise SandboxSettingError(
            f"{SANDBOX_SETTING}={wanted!r} is not one of {', '.join(MECHANISMS)}"
        )
    if wanted == "none":
        return UnavailableSandbox(f"{SANDBOX_SETTING}=none")
    reasons: list[str] = []
    if wanted in ("auto", "bubblewrap"):
        binary = bubblewrap.bwrap_path()
        why = bubblewrap.probe(binary)
        if why is None and binary is not None:
            return bubblewrap.BubblewrapSandbox(binary, installed_egress_proxy())
        reasons.append(f"bubblewrap: {why}")
    if wanted in ("auto", "landlock"):
        abi, why = landlock_sandbox.probe()
        if why is None:
            return landlock_sandbox.LandlockSandbox(abi)
        reasons.append(f"landlock: {why}")
    return UnavailableSandbox(f"{'; '.join(reasons)} ({SANDBOX_SETTING}={wanted})")


def describe(sandbox: ProgramSandbox) -> str:
    """One line for a service's first lines: the mechanism, or why there is none."""
    if sandbox.unavailable is None:
        return f"sandbox: {sandbox.name}"
    return (
        f"sandbox: none ({sandbox.unavailable}); command steps are refused unless a tenant's "
        "policy says commands.sandbox: optional (unsafe)"
    )


class LazySandbox:
    """The mechanism of this process's setting, chosen at the first program (steps that run no
    program never pay for the probe)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        self._chosen: ProgramSandbox | None = None

    def _sandbox(self) -> ProgramSandbox:
        if self._chosen is None:
            try:
                self._chosen = choose_sandbox(self._environ)
            except SandboxSettingError as error:
                self._chosen = UnavailableSandbox(str(error))
        return self._chosen

    @property
    def name(self) -> str:
        """The chosen mechanism's name."""
        return self._sandbox().name

    @property
    def unavailable(self) -> str | None:
        """Why the chosen mechanism cannot confine, or None."""
        return self._sandbox().unavailable

    async def run(self, program: SandboxedProgram) -> ProgramResult:
        """Run through the chosen mechanism."""
        return await self._sandbox().run(program)

    async def start(self, program: SandboxedProgram) -> RunningProgram:
        """Start through the chosen mechanism."""
        return await self._sandbox().start(program)
