"""`run_process` when the step running it is cancelled (a lost lease, a stopping executor): the
program's tree is stopped and nothing is left for asyncio to log as a "never retrieved" error."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from pathlib import Path

import pytest

from rustchain.steps.support.programs import run_process


def test_a_cancelled_run_stops_its_program_and_leaves_no_unretrieved_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> int:
        running = asyncio.Event()
        pids: list[int] = []

        async def started(process: asyncio.subprocess.Process) -> None:
            pids.append(process.pid)
            running.set()

        run = asyncio.ensure_future(
            run_process(
                ["sleep", "60"],
                cwd=tmp_path,
                env=dict(os.environ),
                timeout_seconds=60,
                max_output_bytes=1024,
                started=started,
            )
        )
        await running.wait()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        del run
        gc.collect()  # a future whose error nobody took is reported as it is collected
        return pids[0]

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        pid = asyncio.run(scenario())
    assert "never retrieved" not in caplog.text
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped
