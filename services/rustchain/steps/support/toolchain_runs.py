"""What the four code steps share: the toolchain's program for each task, run on a workspace
folder in the sandbox with no network, the toolchain's installation visible read-only.

Where toolchains live is the deployment's business, in the executor's settings:
`RUSTCHAIN_TOOLCHAIN_PATH` (folders put before the sandbox's PATH, e.g. `/root/.cargo/bin`),
`RUSTCHAIN_TOOLCHAIN_DIRS` (folders outside /usr the sandbox shows read-only, e.g.
`/root/.cargo:/root/.rustup`) and `RUSTCHAIN_TOOLCHAIN_ENV` (`NAME=value` pairs separated by
spaces, e.g. `RUSTUP_HOME=/root/.rustup CARGO_HOME=/root/.cargo`). Which toolchains a tenant may
run is its policy's `toolchains.allowed` (none by default).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.checks import check_value
from rustchain.domain.policy.obligations import Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.confined_runs import (
    base_environment,
    program_folder,
    run_confined,
    tail,
)
from rustchain.steps.support.definition import PARAMETERS
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.sandboxing import ProgramResult

TOOLCHAIN_SETTINGS_PREFIX = "RUSTCHAIN_TOOLCHAIN_"
PATH_SETTING = "RUSTCHAIN_TOOLCHAIN_PATH"
DIRS_SETTING = "RUSTCHAIN_TOOLCHAIN_DIRS"
ENV_SETTING = "RUSTCHAIN_TOOLCHAIN_ENV"

Task = Literal["compile", "test", "format", "lint"]
Language = Literal["rust", "go", "node", "python"]

# RustChain's programs per language (§8.3); python is ours. npx never downloads (`--no`): the
# formatter or linter must be installed in the project, as the sandbox has no network.
PROGRAMS: dict[str, dict[str, tuple[str, ...]]] = {
    "rust": {
        "compile": ("cargo", "check"),
        "test": ("cargo", "test"),
        "format": ("cargo", "fmt"),
        "lint": ("cargo", "clippy"),
    },
    "go": {
        "compile": ("go", "build", "."),
        "test": ("go", "test", "./..."),
        "format": ("gofmt", "-w", "."),
        "lint": ("golint", "./..."),
    },
    "node": {
        "compile": ("npm", "run", "build"),
        "test": ("npm", "test"),
        "format": ("npx", "--no", "prettier", "--write", "."),
        "lint": ("npx", "--no", "eslint", "."),
    },
    "python": {
        "compile": ("python3", "-m", "compileall", "-q", "."),
        "test": ("python3", "-m", "unittest", "discover"),
    },
}

# Each toolchain offline and quiet, its caches in the workspace (HOME), never in the network.
_OFFLINE = {
    "CARGO_NET_OFFLINE": "true",
    "CARGO_TERM_COLOR": "never",
    "GOPROXY": "off",
    "GOTOOLCHAIN": "local",
    "GOTELEMETRY": "off",
    "GOFLAGS": "-mod=mod",
    "npm_config_offline": "true",
    "npm_config_update_notifier": "false",
    "npm_config_fund": "false",
    "npm_config_audit": "false",
    "NO_COLOR": "1",
    "CI": "true",
}


class ToolchainParameters(BaseModel):
    """RustChain's `language` (default `rust`) and the project folder `path`."""

    model_config = PARAMETERS
    path: Annotated[str, Field(min_length=1)]
    language: Language = "rust"


def _settings_environment(context: StepContext) -> dict[str, str]:
    env = base_environment(context)
    env.update(_OFFLINE)
    extra_path = context.settings.get(PATH_SETTING, "")
    if extra_path:
        env["PATH"] = f"{extra_path}:{env['PATH']}"
    for pair in context.settings.get(ENV_SETTING, "").split():
        name, _, value = pair.partition("=")
        if name and value:
            env[name] = value
    return env


def _read_only(context: StepContext) -> list[Path]:
    return [Path(p) for p in context.settings.get(DIRS_SETTING, "").split(":") if p]


async def run_toolchain(
    params: ToolchainParameters, context: StepContext, task: Task
) -> tuple[ProgramResult, str]:
    """Run the language's program for the task on the project folder; the result and the
    program's command line (for messages)."""
    context.enforce(check_value, Sink.TOOLCHAIN, params.language)
    argv = PROGRAMS[params.language].get(task)
    if argv is None:
        tasks = ", ".join(t for t, _ in PROGRAMS[params.language].items())
        raise StepRunError(f"the {params.language} toolchain has no {task} program here ({tasks})")
    folder = program_folder(context, params.path, write=True)
    env = _settings_environment(context)
    if shutil.which(argv[0], path=env["PATH"]) is None:
        raise StepRunError(
            f"the {params.language} toolchain is not installed on this executor: '{argv[0]}' is "
            f"not on the sandbox's PATH ({env['PATH']}); the operator adds it with "
            f"{PATH_SETTING} and {DIRS_SETTING}"
        )
    line = " ".join(argv)
    result = await run_confined(
        context, argv, folder, env, what=f"'{line}'", read_only=_read_only(context)
    )
    return result, line


def output_of(result: ProgramResult) -> dict[str, object]:
    """RustChain's `success`, `stdout` and `stderr`."""
    return {
        "success": result.status == 0,
        "stdout": result.stdout.decode("utf-8", errors="replace"),
        "stderr": result.stderr.decode("utf-8", errors="replace"),
    }


def failure(prefix: str, line: str, result: ProgramResult) -> StepRunError:
    """`<prefix>: <what the program said>` (RustChain's error texts), naming the program."""
    said = tail(result.stderr + b"\n" + result.stdout)
    return StepRunError(f"{prefix}: '{line}' exited with status {result.status}: {said}")


def toolchain_constraints(step: PlannedStep) -> list[Obligation]:
    """The toolchain must be granted; the project folder stays in the workspace, outside denied
    and read-only paths (the programs write: builds, formatting)."""
    parameters = step.parameters
    return [
        *text_uses(Sink.TOOLCHAIN, "language", parameters.get("language", "rust")),
        *text_uses(Sink.PATH_WRITE, "path", parameters.get("path")),
    ]
