"""The `command` step: run a program (argv, no shell unless asked) in the mission's workspace."""

from __future__ import annotations

import errno
import os
import re
import shlex
import shutil
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.checks import byte_bound, check_bytes, check_command, check_environment
from rustchain.domain.policy.obligations import ByteUse, Obligation, Use, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.sandboxing import (
    SANDBOX_PATH,
    SANDBOX_SETTING,
    NetworkGrant,
    ProgramOutputTooLargeError,
    ProgramResult,
    ProgramTimedOutError,
    SandboxedProgram,
    SandboxRefusedError,
)


class CommandParameters(BaseModel):
    """RustChain's `command` + `args` form; `shell: true` runs `command` through /bin/sh."""

    model_config = PARAMETERS
    command: Annotated[str, Field(min_length=1)]
    args: list[str] = Field(default_factory=list)
    shell: bool = False
    # RustChain's key; `working_directory` (ours before RustChain's was known) stays an alias.
    working_dir: str | None = None
    working_directory: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    # None: the policy's bound (commands.max_output_bytes); a larger value is refused.
    max_output_bytes: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _one_directory(self) -> CommandParameters:
        if self.working_dir is not None and self.working_directory is not None:
            raise ValueError("give 'working_dir' or its alias 'working_directory', not both")
        return self

    @property
    def directory(self) -> str | None:
        """The working directory, under either of its names."""
        return self.working_dir if self.working_dir is not None else self.working_directory


OUTPUT_RULE = "commands.output"
_ASCII_SPACE = re.compile(r"[ \t\n\r\x0b\x0c]+")

# Programs get an environment built from an allowlist: nothing of the executor's secrets leaks.
_KEPT_ENVIRONMENT = ("LANG", "LC_ALL", "TZ")


def _environment(params: CommandParameters, context: StepContext) -> dict[str, str]:
    env = {k: os.environ[k] for k in _KEPT_ENVIRONMENT if k in os.environ}
    env["PATH"] = SANDBOX_PATH
    env["HOME"] = str(context.workspace.resolve())
    env.update(params.env)
    return env


def _argv(params: CommandParameters) -> list[str]:
    if params.shell:
        line = " ".join([params.command, *(shlex.quote(a) for a in params.args)])
        return ["/bin/sh", "-c", line]
    # RustChain's `command: "chmod +x run.sh"`: the text is split at ASCII white space, as the
    # verifier reads it; `args` follow.
    program, *words = _ASCII_SPACE.split(params.command.strip())
    return [program, *words, *params.args]


def _check_operating_system_limits(params: CommandParameters) -> None:
    """Values the kernel cannot take, refused here with the parameter's name."""
    if "\0" in params.command:
        raise StepRunError("command contains a NUL byte, which no program can be given")
    for index, argument in enumerate(params.args):
        if "\0" in argument:
            raise StepRunError(f"args[{index}] contains a NUL byte, which no program can be given")
    for name, value in params.env.items():
        if not name or "=" in name or "\0" in name:
            raise StepRunError(f"env name {name!r} is not a valid environment variable name")
        if "\0" in value:
            raise StepRunError(f"env.{name} contains a NUL byte, which no program can be given")


def _check_program(argv: list[str], cwd: Path, workspace: Path, written: str) -> None:
    """The program, looked up on the sandbox's PATH (or relative to cwd), or a clear error."""
    program = argv[0]
    if "/" in program:
        found = (cwd / program).resolve()
        if not found.is_relative_to(workspace):
            return  # outside the workspace only the sandbox may say: no oracle of host paths
        if not found.is_file():
            raise StepRunError(f"program '{written}' not found")
        if not os.access(found, os.X_OK):
            raise StepRunError(f"program '{written}' is not executable")
    elif shutil.which(program, path=SANDBOX_PATH) is None:
        raise StepRunError(f"program '{written}' not found on PATH ({SANDBOX_PATH})")


def _start_error(error: OSError, params: CommandParameters) -> StepRunError:
    if error.errno == errno.E2BIG:
        return StepRunError(
            "the command line is too long for the operating system (E2BIG: "
            "Argument list too long): shorten args or env, or pass the data in a file"
        )
    if isinstance(error, FileNotFoundError):
        return StepRunError(f"program '{params.command}' not found on PATH")
    if isinstance(error, PermissionError):
        return StepRunError(f"program '{params.command}' is not executable")
    return StepRunError(f"program '{params.command}' could not be started: {error.strerror}")


def _unsandboxed_refusal(reason: str) -> StepRunError:
    return StepRunError(
        f"this executor has no OS sandbox for programs ({reason}); command steps need one. "
        f"Set {SANDBOX_SETTING}=bubblewrap or landlock where one works, or let this tenant's "
        "programs run unconfined with `commands: {sandbox: optional}` in its policy (unsafe)"
    )


async def command(params: CommandParameters, context: StepContext) -> str:
    """Run the program in the workspace, in the OS sandbox; its standard output is the output."""
    cwd = context.path(params.directory or ".", write=False)
    if not cwd.is_dir():
        raise StepRunError(f"working directory '{params.directory}' does not exist")
    context.check(check_command, params.command, params.args, shell=params.shell)
    # Checked even without a tenant's policy (a run the verifier never saw): the default
    # policy's allowlist of names then applies.
    for name in params.env:
        context.enforce(check_environment, name)
    max_output = byte_bound(context.enforced_policy, OUTPUT_RULE)
    if params.max_output_bytes is not None:
        context.enforce(check_bytes, OUTPUT_RULE, "max_output_bytes", params.max_output_bytes)
        max_output = params.max_output_bytes
    _check_operating_system_limits(params)
    argv = _argv(params)
    _check_program(argv, cwd, context.workspace.resolve(), params.command)
    commands = context.enforced_policy.commands
    grant = None
    if commands.network_hosts and context.policy is not None:
        network = context.policy.network
        grant = NetworkGrant(commands.network_hosts, network.ports, network.denied_hosts)
    program = SandboxedProgram(
        argv=argv,
        workspace=context.workspace.resolve(),
        cwd=cwd,
        environment=_environment(params, context),
        timeout_seconds=context.timeout_seconds,
        max_output_bytes=max_output,
        limits=commands.limits,
        network=grant,
    )
    sandbox = context.sandbox
    reason = "none was configured" if sandbox is None else sandbox.unavailable
    try:
        if sandbox is not None and reason is None:
            result = await sandbox.run(program)
        elif commands.sandbox == "optional":
            result = await _unconfined(program)
        else:
            raise _unsandboxed_refusal(reason or "none was configured")
    except OSError as error:
        raise _start_error(error, params) from None
    except SandboxRefusedError as error:
        raise StepRunError(str(error)) from None
    except ProgramTimedOutError:
        raise StepRunError(
            f"'{params.command}' did not finish within {context.timeout_seconds:g} s"
        ) from None
    except ProgramOutputTooLargeError:
        raise StepRunError(
            f"'{params.command}' wrote more than max_output_bytes ({max_output}) and was stopped;"
            " write large results to a file in the workspace instead"
        ) from None
    if result.status != 0:
        tail = result.stderr.decode("utf-8", errors="replace").strip()[-500:]
        raise StepRunError(
            f"'{params.command}' exited with status {result.status}" + (f": {tail}" if tail else "")
        )
    return result.stdout.decode("utf-8", errors="replace").removesuffix("\n")


async def _unconfined(program: SandboxedProgram) -> ProgramResult:
    """The policy allows running without a sandbox: same environment, no containment (unsafe)."""
    # Imported when a step runs, not when a mission is compiled: `rustchain validate` needs no
    # asyncio subprocess machinery.
    from rustchain.steps.support.programs import run_process

    return await run_process(
        program.argv,
        cwd=program.cwd,
        env=program.environment,
        timeout_seconds=program.timeout_seconds,
        max_output_bytes=program.max_output_bytes,
    )


STEP_TYPE = StepDefinition("command", "Run a program", CommandParameters, run=command)


def constraints(step: PlannedStep) -> list[Obligation]:
    """Program and arguments must be allowed; the working directory must stay in the workspace;
    the output kept must stay within the policy's bound."""
    parameters = step.parameters
    command = parameters.get("command")
    sink = Sink.SHELL if parameters.get("shell") else Sink.COMMAND_LINE
    uses: list[Obligation] = [*text_uses(sink, "command", command)]
    for index, argument in enumerate(parameters.get("args") or []):
        if isinstance(argument, str) and isinstance(command, str):
            uses.append(Use(Sink.ARGUMENT, f"args[{index}]", argument, command))
    for key in ("working_dir", "working_directory"):
        uses += text_uses(Sink.PATH_READ, key, parameters.get(key))
    for name in parameters.get("env") or {}:
        uses += text_uses(Sink.ENVIRONMENT, f"env.{name}", name)
    uses.append(ByteUse(OUTPUT_RULE, "max_output_bytes", parameters.get("max_output_bytes")))
    return uses


CONSTRAINTS = constraints
