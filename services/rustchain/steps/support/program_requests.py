"""What the steps that run a program of the mission's choosing (`command`, `process_start`) check
and build before it runs: its argv, its environment, its network grant, and the refusals of
values the kernel cannot take, each naming the parameter."""

from __future__ import annotations

import errno
import os
import re
import shlex
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from rustchain.domain.policy.checks import check_environment
from rustchain.steps.support.confined_runs import base_environment
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.sandboxing import SANDBOX_PATH, NetworkGrant

_ASCII_SPACE = re.compile(r"[ \t\n\r\x0b\x0c]+")


def program_argv(command: str, args: Sequence[str], *, shell: bool) -> list[str]:
    """The argv of `command` and `args`: through /bin/sh with `shell`, else RustChain's
    `command: "chmod +x run.sh"` split at ASCII white space (as the verifier reads it)."""
    if shell:
        line = " ".join([command, *(shlex.quote(a) for a in args)])
        return ["/bin/sh", "-c", line]
    program, *words = _ASCII_SPACE.split(command.strip())
    return [program, *words, *args]


def program_environment(context: StepContext, env: Mapping[str, str]) -> dict[str, str]:
    """The allowlisted base environment plus the step's `env`, each name checked against the
    policy (even without a tenant's policy: the default allowlist then applies)."""
    for name in env:
        context.enforce(check_environment, name)
    return {**base_environment(context), **env}


def check_operating_system_limits(
    command: str, args: Sequence[str], env: Mapping[str, str]
) -> None:
    """Values the kernel cannot take, refused here with the parameter's name."""
    if "\0" in command:
        raise StepRunError("command contains a NUL byte, which no program can be given")
    for index, argument in enumerate(args):
        if "\0" in argument:
            raise StepRunError(f"args[{index}] contains a NUL byte, which no program can be given")
    for name, value in env.items():
        if not name or "=" in name or "\0" in name:
            raise StepRunError(f"env name {name!r} is not a valid environment variable name")
        if "\0" in value:
            raise StepRunError(f"env.{name} contains a NUL byte, which no program can be given")


def check_program(argv: Sequence[str], cwd: Path, workspace: Path, written: str) -> None:
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


def start_error(error: OSError, written: str) -> StepRunError:
    """What the OS said when the program could not start, naming the program as written."""
    if error.errno == errno.E2BIG:
        return StepRunError(
            "the command line is too long for the operating system (E2BIG: "
            "Argument list too long): shorten args or env, or pass the data in a file"
        )
    if isinstance(error, FileNotFoundError):
        return StepRunError(f"program '{written}' not found on PATH")
    if isinstance(error, PermissionError):
        return StepRunError(f"program '{written}' is not executable")
    return StepRunError(f"program '{written}' could not be started: {error.strerror}")


def network_grant(context: StepContext) -> NetworkGrant | None:
    """Where the tenant's policy lets its programs connect (commands.network_hosts, through the
    egress proxy), or None: no network at all."""
    commands = context.enforced_policy.commands
    if not commands.network_hosts or context.policy is None:
        return None
    network = context.policy.network
    return NetworkGrant(commands.network_hosts, network.ports, network.denied_hosts)
