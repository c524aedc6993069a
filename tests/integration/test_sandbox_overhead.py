"""The sandbox's overhead is its set-up, from starting the mechanism to the program's exec: it
leaves out the program's own run time, and is measured by each mechanism."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from rustchain.steps.support.sandboxing import SANDBOX_PATH, SandboxedProgram
from tests.integration.sandbox_helpers import MECHANISMS, sandbox

PROGRAM_SECONDS = 0.6


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_the_setup_time_leaves_out_the_programs_own_time(mechanism: str, tmp_path: Path) -> None:
    confined = sandbox(mechanism)
    program = SandboxedProgram(
        argv=["sleep", str(PROGRAM_SECONDS)],
        workspace=tmp_path,
        cwd=tmp_path,
        environment={"PATH": SANDBOX_PATH},
        timeout_seconds=30,
        max_output_bytes=1024,
    )

    started = time.perf_counter()
    result = asyncio.run(confined.run(program))
    wall = time.perf_counter() - started

    assert result.status == 0
    assert result.setup_seconds is not None
    # The program slept PROGRAM_SECONDS after its exec: none of that is set-up.
    assert 0 < result.setup_seconds < wall - PROGRAM_SECONDS
    assert wall >= PROGRAM_SECONDS
