"""An executor process for crash tests: `start MISSION_FILE` or `resume` ($RUSTCHAIN_HOME)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from rustchain.bootstrap.executor import build_executor
from rustchain.domain.plans.bindings import bind_variables
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.platform.storage.mission_files import compile_file
from rustchain.steps import default_registry


async def main(mode: str, mission_file: str | None) -> None:
    """Start a mission and drive it, or resume every unfinished one."""
    registry = default_registry(include_plugins=False)
    store = open_event_store(EventStoreSettings.from_environ("executor"))
    executor = build_executor(os.environ, store, registry=registry, policy_for=None)
    if mode == "start":
        assert mission_file is not None
        plan = compile_file(mission_file, registry).plan
        assert plan is not None
        workspace = Path(mission_file).parent
        mission_id = executor.start(
            "acme", plan, bind_variables(plan.variables, {}), workspace=workspace
        )
        print(mission_id, flush=True)
        await executor.drive("acme", mission_id)
    else:
        for tenant, mission_id in executor.unfinished():
            run = await executor.drive(tenant, mission_id)
            print(mission_id, run.outcome, flush=True)
    store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
