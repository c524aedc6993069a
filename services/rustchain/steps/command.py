"""The `command` step: run a program (argv, no shell unless asked) in the mission's workspace."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
from collections.abc import Sequence
from dataclasses import replace
from typing import Annotated, Any

from pydantic import BaseModel, Field

from rustchain.domain.plan import PlannedStep
from rustchain.domain.policy import Policy
from rustchain.domain.policy_checks import check_command, check_environment
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


STOP_GRACE_SECONDS = 5.0
_ASCII_SPACE = re.compile(r"[ \t\n\r\x0b\x0c]+")

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
    cwd = context.path(params.working_directory or ".", write=False)
    if not cwd.is_dir():
        raise StepRunError(f"working directory '{params.working_directory}' does not exist")
    context.check(check_command, params.command, params.args, shell=params.shell)
    # Checked even without a tenant's policy (a run the verifier never saw): the default
    # policy's allowlist of names then applies.
    guarded = context if context.policy is not None else replace(context, policy=Policy())
    for name in params.env:
        guarded.check(check_environment, name)
    # Its own session, so that a timeout can kill the program's whole group.
    options: dict[str, Any] = {
        "cwd": cwd,
        "env": _environment(params, context),
        "stdin": asyncio.subprocess.DEVNULL,
        "stdout": asyncio.subprocess.PIPE,
        "stderr": asyncio.subprocess.PIPE,
        "start_new_session": True,
    }
    try:
        if params.shell:
            line = " ".join([params.command, *(shlex.quote(a) for a in params.args)])
            process = await asyncio.create_subprocess_shell(line, **options)
        else:
            # RustChain's `command: "chmod +x run.sh"`: the text is split at ASCII white space,
            # as the verifier reads it; `args` follow.
            program, *words = _ASCII_SPACE.split(params.command.strip())
            process = await asyncio.create_subprocess_exec(program, *words, *params.args, **options)
    except FileNotFoundError:
        raise StepRunError(f"program '{params.command}' not found on PATH") from None
    except PermissionError:
        raise StepRunError(f"program '{params.command}' is not executable") from None
    assert process.stdout is not None and process.stderr is not None
    readers = [
        asyncio.ensure_future(_read_capped(process.stdout, params.max_output_bytes)),
        asyncio.ensure_future(_read_capped(process.stderr, params.max_output_bytes)),
    ]
    try:
        stdout, stderr = await asyncio.wait_for(
            asyncio.gather(*readers), timeout=context.timeout_seconds
        )
        status = await process.wait()
    except TimeoutError:
        await _stop(process, readers)
        raise StepRunError(
            f"'{params.command}' did not finish within {context.timeout_seconds:g} s"
        ) from None
    except _OutputTooLargeError:
        await _stop(process, readers)
        raise StepRunError(
            f"'{params.command}' wrote more than max_output_bytes ({params.max_output_bytes}) "
            "and was stopped; raise max_output_bytes if that much output is expected"
        ) from None
    except asyncio.CancelledError:
        await _stop(process, readers)
        raise
    if status != 0:
        tail = stderr.decode("utf-8", errors="replace").strip()[-500:]
        raise StepRunError(
            f"'{params.command}' exited with status {status}" + (f": {tail}" if tail else "")
        )
    return stdout.decode("utf-8", errors="replace").removesuffix("\n")


async def _stop(
    process: asyncio.subprocess.Process, readers: Sequence[asyncio.Future[bytes]]
) -> None:
    """Kill the program's whole group and drain its pipes, so that its exit can be awaited."""
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    _kill_group(process.pid)

    async def drain_and_wait() -> None:
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                # A paused, unread pipe never reports its end, and the exit waits for both ends.
                while await stream.read(65536):
                    pass
        await process.wait()

    try:
        await asyncio.wait_for(drain_and_wait(), STOP_GRACE_SECONDS)
    except TimeoutError:
        # A descendant that left the group still holds the pipes: stop listening to them.
        transport = getattr(process, "_transport", None)
        if transport is not None:
            transport.close()


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
