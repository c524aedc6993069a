"""Running a fixed program for a step (git, a toolchain) in the OS sandbox, with the same refusals
and bounds as a `command` step: no sandbox means no run unless the policy says it is optional."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from rustchain.domain.policy.checks import byte_bound
from rustchain.steps.support.os_refusals import os_refusals
from rustchain.steps.support.programs import run_process
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.sandboxing import (
    SANDBOX_PATH,
    SANDBOX_SETTING,
    ProgramOutputTooLargeError,
    ProgramResult,
    ProgramTimedOutError,
    SandboxedProgram,
    SandboxRefusedError,
)

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
    sandbox = context.sandbox
    reason = "none was configured" if sandbox is None else sandbox.unavailable
    try:
        if sandbox is not None and reason is None:
            return await sandbox.run(program)
        if policy.commands.sandbox == "optional":
            return await run_process(
                program.argv,
                cwd=program.cwd,
                env=program.environment,
                timeout_seconds=program.timeout_seconds,
                max_output_bytes=program.max_output_bytes,
            )
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
    raise StepRunError(
        f"this executor has no OS sandbox for programs ({reason}); {what} needs one. "
        f"Set {SANDBOX_SETTING}=bubblewrap or landlock where one works, or let this tenant's "
        "programs run unconfined with `commands: {sandbox: optional}` in its policy (unsafe)"
    )


def tail(data: bytes, limit: int = 2000) -> str:
    """The end of a program's output, as text, for an error message."""
    return data.decode("utf-8", errors="replace").strip()[-limit:]
