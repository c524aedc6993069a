"""The `lint_code` step: lint a project (cargo clippy, golint, eslint), confined in the sandbox
without network."""

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


async def lint_code(params: ToolchainParameters, context: StepContext) -> dict[str, Any]:
    """RustChain's `success`, `stdout` and `stderr`; a non-zero status fails the step."""
    result, line = await run_toolchain(params, context, "lint")
    if result.status != 0:
        raise failure("Lint found problems", line, result)
    return output_of(result)


STEP_TYPE = StepDefinition(
    "lint_code", "Lint a project (cargo clippy, golint, eslint)", ToolchainParameters, run=lint_code
)
CONSTRAINTS = toolchain_constraints
