"""Running the data steps (SQL, Redis, embeddings) in tests: one attempt, with a given policy or
none at all (the verifier bypassed: the runner's own checks are all that stand)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from rustchain.domain.policy.model import Policy
from rustchain.steps import default_registry
from rustchain.steps.support.runtime import StepContext, parameters_of

REGISTRY = default_registry(include_plugins=False)


def context_for(
    workspace: Path, policy: Policy | None, settings: dict[str, str] | None = None
) -> StepContext:
    """One attempt's context for tenant `acme`."""
    return StepContext("acme", "m1", "s1", workspace, 10, settings=settings or {}, policy=policy)


def run_step(step_type: str, context: StepContext, **parameters: Any) -> Any:
    """One attempt of a step, parameters validated as the executor validates them."""
    definition = REGISTRY.types[step_type]
    params = parameters_of(definition.parameters, parameters)
    return asyncio.run(definition.run(params, context))  # type: ignore[attr-defined]
