"""The `compile_code` step: check that a project compiles (cargo check, go build, npm run
build), confined in the sandbox without network."""

from __future__ import annotations

from typing import Any

from rustchain.steps.support.definition import StepDefinition
from rustchain.steps.support.runtime import StepContext
from rustchain.steps.support.toolchain_runs import (
    ToolchainParameters,
    failure,
    output_of,
    run_toolchain,
    toolchain_constraints,
)


async def compile_code(params: ToolchainParameters, context: StepContext) -> dict[str, Any]:
    """RustChain's `success`, `stdout` and `stderr`; a non-zero status fails the step."""
    result, line = await run_toolchain(params, context, "compile")
    if result.status != 0:
        raise failure("Compilation failed", line, result)
    return output_of(result)


STEP_TYPE = StepDefinition(
    "compile_code",
    "Check that a project compiles (cargo check, go build, npm run build)",
    ToolchainParameters,
    run=compile_code,
)
CONSTRAINTS = toolchain_constraints
