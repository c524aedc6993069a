"""The `process_kill` step: kill a background program this mission started, by the handle its
`process_start` step returned (`{start.handle}`).

Never by pid or name: RustChain's `pid` parameter is refused, since no pid of the host is a
mission's to signal. A handle another mission (or tenant) holds names nothing here; one recorded
before the executor restarted names a program that died with that executor, and is reported gone.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation
from rustchain.steps.support.background import BackgroundProcessError
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext, StepRunError


class ProcessKillParameters(BaseModel):
    """The handle of the program to kill (RustChain's `pid` is refused, with the reason)."""

    model_config = PARAMETERS
    handle: Annotated[str, Field(min_length=1)]
    # RustChain's parameter, read only to refuse it (and left out of `rustchain schema`).
    pid: SkipJsonSchema[object] = None

    @field_validator("pid")
    @classmethod
    def _no_pid(cls, pid: object) -> object:
        if pid is not None:
            raise ValueError(
                "process_kill takes the 'handle' a process_start step of this mission returned "
                "(e.g. handle: '{start.handle}'), never a pid: a mission may only end processes "
                "it started"
            )
        return pid


async def process_kill(params: ProcessKillParameters, context: StepContext) -> dict[str, Any]:
    """Kill the program (its whole tree); report whether it was still running and its status."""
    processes = context.processes
    if processes is None:
        raise StepRunError(
            "this run keeps no background processes: process_kill runs only in a mission an "
            "executor drives"
        )
    try:
        ended = await processes.kill(params.handle)
    except BackgroundProcessError as error:
        raise StepRunError(str(error)) from None
    return {"handle": params.handle, "killed": ended.killed, "exit_status": ended.status}


STEP_TYPE = StepDefinition(
    "process_kill",
    "Kill a background program this mission started, by its handle",
    ProcessKillParameters,
    run=process_kill,
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """Nothing the policy governs: a handle names only a program of this mission."""
    del step
    return []


CONSTRAINTS = constraints
