"""The `run_tests` step: run a project's tests (cargo test, go test, npm test), confined in the
sandbox without network."""

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


async def run_tests(params: ToolchainParameters, context: StepContext) -> dict[str, Any]:
    """RustChain's `success`, `stdout` and `stderr`; a non-zero status fails the step."""
    result, line = await run_toolchain(params, context, "test")
    if result.status != 0:
        raise failure("Tests failed", line, result)
    return output_of(result)


STEP_TYPE = StepDefinition(
    "run_tests",
    "Run a project's tests (cargo test, go test, npm test)",
    ToolchainParameters,
    run=run_tests,
)
CONSTRAINTS = toolchain_constraints
