"""The `command` step: run a program (argv, no shell unless asked) in the mission's workspace."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.checks import byte_bound, check_bytes, check_command
from rustchain.domain.policy.obligations import ByteUse, Obligation, Use, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.confined_runs import NoSandboxError, no_sandbox_refusal, run_program
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.program_requests import (
    check_operating_system_limits,
    check_program,
    network_grant,
    program_argv,
    program_environment,
    start_error,
)
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.sandboxing import (
    ProgramOutputTooLargeError,
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


def output_bound(context: StepContext, asked: int | None) -> int:
    """The most standard output a program may write: the policy's bound, or the step's own
    `max_output_bytes` (refused above the bound)."""
    if asked is None:
        return byte_bound(context.enforced_policy, OUTPUT_RULE)
    context.enforce(check_bytes, OUTPUT_RULE, "max_output_bytes", asked)
    return asked


async def command(params: CommandParameters, context: StepContext) -> str:
    """Run the program in the workspace, in the OS sandbox; its standard output is the output."""
    cwd = context.path(params.directory or ".", write=False)
    if not cwd.is_dir():
        raise StepRunError(f"working directory '{params.directory}' does not exist")
    context.check(check_command, params.command, params.args, shell=params.shell)
    environment = program_environment(context, params.env)
    max_output = output_bound(context, params.max_output_bytes)
    check_operating_system_limits(params.command, params.args, params.env)
    argv = program_argv(params.command, params.args, shell=params.shell)
    check_program(argv, cwd, context.workspace.resolve(), params.command)
    program = SandboxedProgram(
        argv=argv,
        workspace=context.workspace.resolve(),
        cwd=cwd,
        environment=environment,
        timeout_seconds=context.timeout_seconds,
        max_output_bytes=max_output,
        limits=context.enforced_policy.commands.limits,
        network=network_grant(context),
    )
    try:
        result = await run_program(context, program)
    except NoSandboxError as error:
        raise no_sandbox_refusal(str(error), "command steps need one") from None
    except OSError as error:
        raise start_error(error, params.command) from None
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
