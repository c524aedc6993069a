"""The `format_code` step: format a project in place (cargo fmt, gofmt, prettier), confined in the
sandbox without network."""

from __future__ import annotations

from typing import Any

from rustchain.steps.support.definition import StepDefinition
from rustchain.steps.support.runtime import StepContext
from rustchain.steps.support.toolchain_runs import (
    ToolchainParameters,
    failure,
    run_toolchain,
    toolchain_constraints,
)


async def format_code(params: ToolchainParameters, context: StepContext) -> dict[str, Any]:
    """RustChain's `formatted` and `language`; a non-zero status fails the step."""
    result, line = await run_toolchain(params, context, "format")
    if result.status != 0:
        raise failure("Formatting failed", line, result)
    return {"formatted": True, "language": params.language}


STEP_TYPE = StepDefinition(
    "format_code", "Format a project's code in place", ToolchainParameters, run=format_code
)
CONSTRAINTS = toolchain_constraints
