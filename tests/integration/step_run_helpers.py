"""Running one attempt of a step the way the executor does, with or without the tenant's policy."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rustchain.domain.policy.model import Policy
from rustchain.steps import default_registry
from rustchain.steps.support.runtime import StepContext, parameters_of
from tests.integration.sandbox_helpers import sandboxed_context

REGISTRY = default_registry(include_plugins=False)


def run_step(
    step_type: str,
    workspace: Path,
    *,
    policy: Policy | None = None,
    settings: Mapping[str, str] | None = None,
    mechanism: str = "auto",
    **parameters: Any,
) -> Any:
    """One attempt in a real sandbox, parameters validated as the executor validates them;
    `policy` None: no verifier ran and no tenant policy is enforced (the bypass)."""
    definition = REGISTRY.types[step_type]
    params = parameters_of(definition.parameters, parameters)
    context = sandboxed_context(workspace, 120, policy=policy, mechanism=mechanism)
    if settings is not None:
        context = dataclasses.replace(context, settings=settings)
    runner = getattr(definition, "run", None)
    assert runner is not None, f"{step_type} has no runner"
    return asyncio.run(runner(params, context))


async def attempt(
    step_type: str, workspace: Path, policy: Policy | None = None, **parameters: Any
) -> Any:
    """One attempt of a step that runs no program (no sandbox), parameters validated as the
    executor validates them; `policy` None: the default policy's runtime checks only."""
    definition = REGISTRY.types[step_type]
    params = parameters_of(definition.parameters, parameters)
    context = StepContext("acme", "m1", "s1", workspace, 10, policy=policy)
    runner = getattr(definition, "run", None)
    assert runner is not None, f"{step_type} has no runner"
    return await runner(params, context)
