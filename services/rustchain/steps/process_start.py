"""The `process_start` step: start a program in the background, in the OS sandbox, and return a
handle that a later `process_kill` step of the same mission names it by.

The executor's per-mission supervisor owns the program until the mission ends (completed, failed
or cancelled), then kills it with everything it started. Its standard output and error are copied,
up to `max_output_bytes` each, to `process_logs/<step id>.stdout` and `.stderr` in the workspace.
Not idempotent: an executor that stops while this step runs fails it on resume (it may or may
not have started the program), unless the step says `retry.idempotent`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.checks import check_command
from rustchain.domain.policy.obligations import ByteUse, Obligation, Use, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.command import OUTPUT_RULE, output_bound
from rustchain.steps.support.background import BackgroundProcessError, BackgroundStart
from rustchain.steps.support.confined_runs import NoSandboxError, launcher, no_sandbox_refusal
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
from rustchain.steps.support.sandboxing import SandboxedProgram, SandboxRefusedError
from rustchain.steps.support.workspace_files import open_for_writing

LOG_FOLDER = "process_logs"


class ProcessStartParameters(BaseModel):
    """RustChain's `command`, `args`, `working_dir`; ours: `env` and the log bound."""

    model_config = PARAMETERS
    command: Annotated[str, Field(min_length=1)]
    args: list[str] = Field(default_factory=list)
    working_dir: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    # Per stream copied to the log files; None: the policy's bound (commands.max_output_bytes).
    max_output_bytes: Annotated[int, Field(ge=1)] | None = None


def log_paths(step_id: str) -> tuple[str, str]:
    """Where a process_start step's standard output and error are kept, in the workspace."""
    return f"{LOG_FOLDER}/{step_id}.stdout", f"{LOG_FOLDER}/{step_id}.stderr"


async def process_start(params: ProcessStartParameters, context: StepContext) -> dict[str, Any]:
    """Start the program in the sandbox, kept by the mission's supervisor; its handle."""
    processes = context.processes
    if processes is None:
        raise StepRunError(
            "this run keeps no background processes: process_start runs only in a mission an "
            "executor drives (it kills them when the mission ends)"
        )
    cwd = context.path(params.working_dir or ".", write=False)
    if not cwd.is_dir():
        raise StepRunError(f"working directory '{params.working_dir}' does not exist")
    context.check(check_command, params.command, params.args)
    environment = program_environment(context, params.env)
    max_log = output_bound(context, params.max_output_bytes)
    check_operating_system_limits(params.command, params.args, params.env)
    argv = program_argv(params.command, params.args, shell=False)
    check_program(argv, cwd, context.workspace.resolve(), params.command)
    try:
        launch = launcher(context)
    except NoSandboxError as error:
        raise no_sandbox_refusal(str(error), "process_start steps need one") from None
    policy = context.enforced_policy
    program = SandboxedProgram(
        argv=argv,
        workspace=context.workspace.resolve(),
        cwd=cwd,
        environment=environment,
        timeout_seconds=context.timeout_seconds,  # not applied: it runs until killed
        max_output_bytes=max_log,
        limits=policy.commands.limits,
        network=network_grant(context),
    )
    stdout_path, stderr_path = log_paths(context.step_id)
    stdout, stdout_fd = open_for_writing(context, stdout_path, overwrite=True, parameter="log")
    try:
        stderr, stderr_fd = open_for_writing(context, stderr_path, overwrite=True, parameter="log")
    except BaseException:
        os.close(stdout_fd)
        raise
    request = BackgroundStart(
        program,
        launch,
        stdout_fd,
        stderr_fd,
        max_log_bytes=max_log,
        max_processes=policy.commands.max_background_processes,
    )
    try:
        handle = await processes.start(request)  # it owns (and closes) the descriptors now
    except BackgroundProcessError as error:
        raise StepRunError(str(error)) from None
    except OSError as error:
        raise start_error(error, params.command) from None
    except SandboxRefusedError as error:
        raise StepRunError(str(error)) from None
    return {
        "command": params.command,
        "handle": handle,
        "started": True,
        "stdout": stdout,
        "stderr": stderr,
    }


def recorded_handles(outputs: Iterable[Any]) -> set[str]:
    """The handles in recorded outputs of process_start steps (those of a resumed mission,
    whose programs died with the executor that started them)."""
    found: set[str] = set()
    for output in outputs:
        with contextlib.suppress(AttributeError, TypeError):
            handle = output.get("handle")
            if isinstance(handle, str):
                found.add(handle)
    return found


STEP_TYPE = StepDefinition(
    "process_start",
    "Start a program in the background (killed by process_kill or when the mission ends)",
    ProcessStartParameters,
    run=process_start,
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """As a command without shell: the program and its arguments must be allowed, the working
    directory must stay in the workspace, the logs kept within the output bound; and the
    log files are written."""
    parameters = step.parameters
    command = parameters.get("command")
    uses: list[Obligation] = [*text_uses(Sink.COMMAND_LINE, "command", command)]
    for index, argument in enumerate(parameters.get("args") or []):
        if isinstance(argument, str) and isinstance(command, str):
            uses.append(Use(Sink.ARGUMENT, f"args[{index}]", argument, command))
    uses += text_uses(Sink.PATH_READ, "working_dir", parameters.get("working_dir"))
    for name in parameters.get("env") or {}:
        uses += text_uses(Sink.ENVIRONMENT, f"env.{name}", name)
    uses.append(ByteUse(OUTPUT_RULE, "max_output_bytes", parameters.get("max_output_bytes")))
    for path in log_paths(step.id):
        uses.append(Use(Sink.PATH_WRITE, "log", path))
    return uses


CONSTRAINTS = constraints
