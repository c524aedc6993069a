"""Running a step's program in the OS sandbox: the one choice of where a program runs (the
executor's sandbox; unconfined only where the tenant's policy says the sandbox is optional; else
refused) for `command`, `process_start` and the fixed programs of steps (git, a toolchain)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rustchain.domain.policy.checks import byte_bound
from rustchain.steps.support.background import Launch
from rustchain.steps.support.os_refusals import os_refusals
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.sandboxing import (
    SANDBOX_PATH,
    SANDBOX_SETTING,
    ProgramOutputTooLargeError,
    ProgramResult,
    ProgramSandbox,
    ProgramTimedOutError,
    SandboxedProgram,
    SandboxRefusedError,
)

if TYPE_CHECKING:
    from rustchain.steps.support.programs import RunningProgram

OUTPUT_RULE = "commands.output"
_KEPT_ENVIRONMENT = ("LANG", "LC_ALL", "TZ")


def program_folder(context: StepContext, written: str, *, write: bool) -> Path:
    """The workspace folder a program runs in (`path`), checked against the policy, resolved
    inside the workspace, and a folder; what the OS refuses is a step error."""
    with os_refusals("path", written):
        folder = context.path(written, write=write)
        if not folder.is_dir():
            raise StepRunError(f"path '{written}' is not a folder of the workspace")
    return folder


def base_environment(context: StepContext) -> dict[str, str]:
    """The environment every fixed program starts from: an allowlist, the sandbox's PATH and the
    workspace as HOME (nothing of the executor's own environment or secrets)."""
    env = {k: os.environ[k] for k in _KEPT_ENVIRONMENT if k in os.environ}
    env["PATH"] = SANDBOX_PATH
    env["HOME"] = str(context.workspace.resolve())
    return env


class NoSandboxError(Exception):
    """The executor has no OS sandbox and the tenant's policy requires one (the reason)."""


def no_sandbox_refusal(reason: str, who: str) -> StepRunError:
    """The refusal of a program with no sandbox to run in; `who` says what needs one."""
    return StepRunError(
        f"this executor has no OS sandbox for programs ({reason}); {who}. "
        f"Set {SANDBOX_SETTING}=bubblewrap or landlock where one works, or let this tenant's "
        "programs run unconfined with `commands: {sandbox: optional}` in its policy (unsafe)"
    )


def _confinement(context: StepContext) -> ProgramSandbox | None:
    """The sandbox the program runs in; None where the policy lets it run unconfined."""
    sandbox = context.sandbox
    reason = "none was configured" if sandbox is None else sandbox.unavailable
    if sandbox is not None and reason is None:
        return sandbox
    if context.enforced_policy.commands.sandbox == "optional":
        return None
    raise NoSandboxError(reason or "none was configured")


async def run_program(context: StepContext, program: SandboxedProgram) -> ProgramResult:
    """Run the program to its end in the context's sandbox, or unconfined where the policy says
    `commands.sandbox: optional`; NoSandboxError otherwise. The sandbox's errors (timeout,
    output cap, refusal, OSError) are the caller's to word."""
    sandbox = _confinement(context)
    if sandbox is not None:
        return await sandbox.run(program)
    # asyncio's subprocess machinery, loaded to run a program: every command that compiles a
    # mission imports the step modules that import this one (docs/step-types.md).
    from rustchain.steps.support.programs import run_process

    return await run_process(
        program.argv,
        cwd=program.cwd,
        env=program.environment,
        timeout_seconds=program.timeout_seconds,
        max_output_bytes=program.max_output_bytes,
    )


def launcher(context: StepContext) -> Launch:
    """How a background program starts: in the context's sandbox, or unconfined where the
    policy says `commands.sandbox: optional`; NoSandboxError otherwise."""
    sandbox = _confinement(context)
    if sandbox is not None:
        return sandbox.start

    async def unconfined(program: SandboxedProgram) -> RunningProgram:
        from rustchain.steps.support.programs import start_process

        return await start_process(program.argv, cwd=program.cwd, env=program.environment)

    return unconfined


async def run_confined(
    context: StepContext,
    argv: Sequence[str],
    cwd: Path,
    environment: Mapping[str, str],
    *,
    what: str,
    read_only: Sequence[Path] = (),
) -> ProgramResult:
    """Run `argv` in `cwd` (inside the workspace) in the sandbox, without network; `what` names
    the program in errors. Any exit status is returned: the caller says what it means."""
    policy = context.enforced_policy
    max_output = byte_bound(policy, OUTPUT_RULE)
    program = SandboxedProgram(
        argv=list(argv),
        workspace=context.workspace.resolve(),
        cwd=cwd,
        environment=dict(environment),
        timeout_seconds=context.timeout_seconds,
        max_output_bytes=max_output,
        limits=policy.commands.limits,
        read_only=tuple(read_only),
    )
    try:
        return await run_program(context, program)
    except NoSandboxError as error:
        raise no_sandbox_refusal(str(error), f"{what} needs one") from None
    except FileNotFoundError:
        raise StepRunError(f"{what} is not installed on this executor") from None
    except OSError as error:
        raise StepRunError(f"{what} could not be started: {error.strerror}") from None
    except SandboxRefusedError as error:
        raise StepRunError(str(error)) from None
    except ProgramTimedOutError:
        raise StepRunError(f"{what} did not finish within {context.timeout_seconds:g} s") from None
    except ProgramOutputTooLargeError:
        raise StepRunError(
            f"{what} wrote more than {max_output} bytes (commands.max_output_bytes) and was stopped"
        ) from None


def tail(data: bytes, limit: int = 2000) -> str:
    """The end of a program's output, as text, for an error message."""
    return data.decode("utf-8", errors="replace").strip()[-limit:]
