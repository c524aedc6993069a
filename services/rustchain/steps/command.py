"""The `command` step: run a program (argv, no shell unless asked) in the mission's workspace."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from typing import Annotated

from pydantic import BaseModel, Field

from rustchain.domain.plan import PlannedStep
from rustchain.domain.policy_obligations import Obligation, Use, text_uses
from rustchain.domain.policy_rules import Sink
from rustchain.steps.definition import PARAMETERS, StepDefinition
from rustchain.steps.runtime import StepContext, StepRunError


class CommandParameters(BaseModel):
    """RustChain's `command` + `args` form; `shell: true` runs `command` through /bin/sh."""

    model_config = PARAMETERS
    command: Annotated[str, Field(min_length=1)]
    args: list[str] = Field(default_factory=list)
    shell: bool = False
    working_directory: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    max_output_bytes: Annotated[int, Field(ge=1)] = 1024 * 1024


# Programs get a clean environment: nothing of the executor's secrets leaks into a step.
_KEPT_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "TZ")


def _environment(params: CommandParameters, context: StepContext) -> dict[str, str]:
    env = {k: os.environ[k] for k in _KEPT_ENVIRONMENT if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["HOME"] = str(context.workspace)
    env.update(params.env)
    return env


class _OutputTooLargeError(Exception):
    """The program wrote more than the step allows."""


async def _read_capped(stream: asyncio.StreamReader, cap: int) -> bytes:
    kept = bytearray()
    while chunk := await stream.read(65536):
        kept += chunk
        if len(kept) > cap:
            raise _OutputTooLargeError
        # A fast writer keeps the buffer full, and a read from a full buffer never suspends:
        # yield so that the timeout can fire.
        await asyncio.sleep(0)
    return bytes(kept)


async def command(params: CommandParameters, context: StepContext) -> str:
    """Run the program in the workspace; its standard output is the step's output."""
    cwd = context.path(params.working_directory or ".")
    if not cwd.is_dir():
        raise StepRunError(f"working directory '{params.working_directory}' does not exist")
    env = _environment(params, context)
    try:
        if params.shell:
            line = " ".join([params.command, *(shlex.quote(a) for a in params.args)])
            process = await asyncio.create_subprocess_shell(
                line,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        else:
            process = await asyncio.create_subprocess_exec(
                params.command,
                *params.args,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
    except FileNotFoundError:
        raise StepRunError(f"program '{params.command}' not found on PATH") from None
    except PermissionError:
        raise StepRunError(f"program '{params.command}' is not executable") from None
    assert process.stdout is not None and process.stderr is not None
    try:
        stdout, stderr = await asyncio.wait_for(
            asyncio.gather(
                _read_capped(process.stdout, params.max_output_bytes),
                _read_capped(process.stderr, params.max_output_bytes),
            ),
            timeout=context.timeout_seconds,
        )
        status = await process.wait()
    except TimeoutError:
        _kill_group(process.pid)
        await process.wait()
        raise StepRunError(
            f"'{params.command}' did not finish within {context.timeout_seconds:g} s"
        ) from None
    except _OutputTooLargeError:
        _kill_group(process.pid)
        await process.wait()
        raise StepRunError(
            f"'{params.command}' wrote more than max_output_bytes ({params.max_output_bytes}) "
            "and was stopped; raise max_output_bytes if that much output is expected"
        ) from None
    except asyncio.CancelledError:
        _kill_group(process.pid)
        raise
    if status != 0:
        tail = stderr.decode("utf-8", errors="replace").strip()[-500:]
        raise StepRunError(
            f"'{params.command}' exited with status {status}" + (f": {tail}" if tail else "")
        )
    return stdout.decode("utf-8", errors="replace").removesuffix("\n")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


STEP_TYPE = StepDefinition("command", "Run a program", CommandParameters, run=command)


def constraints(step: PlannedStep) -> list[Obligation]:
    """Program and arguments must be allowed; the working directory must stay in the workspace."""
    parameters = step.parameters
    command = parameters.get("command")
    sink = Sink.SHELL if parameters.get("shell") else Sink.COMMAND_LINE
    uses: list[Obligation] = [*text_uses(sink, "command", command)]
    for index, argument in enumerate(parameters.get("args") or []):
        if isinstance(argument, str) and isinstance(command, str):
            uses.append(Use(Sink.ARGUMENT, f"args[{index}]", argument, command))
    uses += text_uses(Sink.PATH_READ, "working_directory", parameters.get("working_directory"))
    for name in parameters.get("env") or {}:
        uses += text_uses(Sink.ENVIRONMENT, f"env.{name}", name)
    return uses


CONSTRAINTS = constraints
