"""The `monitor_resources` step: one snapshot of the executor host's CPU, memory and disk (psutil).

What a tenant sees is deliberately little: machine-wide totals (CPU use over a short sample,
memory, load average) and the disk that holds the mission's workspace. No process list, no user
names, no other mission's figures: processes of other tenants on the same executor are not
theirs to see. RustChain's CPU figure came from one refresh and was meaningless; here it is
measured over `sample_seconds`.
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Any

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext


class MonitorResourcesParameters(BaseModel):
    """RustChain's step had none; ours: how long to sample the CPU."""

    model_config = PARAMETERS
    sample_seconds: Annotated[float, Field(ge=0.01, le=10)] = 0.1


def _percent(part: float, whole: float) -> float:
    return round(part / whole * 100, 2) if whole else 0.0


def _snapshot(sample_seconds: float, workspace: str) -> dict[str, Any]:
    # A blocking sample of its own (not the module-wide "since last call" state parallel steps
    # would share).
    import psutil  # loaded when the step runs, not when a mission is validated

    cpu = psutil.cpu_percent(interval=sample_seconds)
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(workspace)
    load = [round(x, 2) for x in os.getloadavg()]
    return {
        "cpu_usage_percent": cpu,
        "cpu_count": psutil.cpu_count() or 0,
        "load_average": load,
        "memory": {
            "total_bytes": memory.total,
            "used_bytes": memory.total - memory.available,
            "free_bytes": memory.available,
            "usage_percent": _percent(memory.total - memory.available, memory.total),
        },
        "workspace_disk": {
            "total_bytes": disk.total,
            "used_bytes": disk.used,
            "free_bytes": disk.free,
            "usage_percent": disk.percent,
        },
    }


async def monitor_resources(
    params: MonitorResourcesParameters, context: StepContext
) -> dict[str, Any]:
    """The snapshot, sampled in a worker thread (the CPU sample blocks)."""
    workspace = str(context.workspace.resolve())
    return await asyncio.to_thread(_snapshot, params.sample_seconds, workspace)


STEP_TYPE = StepDefinition(
    "monitor_resources",
    "Report the executor host's CPU, memory and workspace disk",
    MonitorResourcesParameters,
    run=monitor_resources,
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """Nothing the policy governs: only machine-wide totals are reported."""
    del step
    return []


CONSTRAINTS = constraints
