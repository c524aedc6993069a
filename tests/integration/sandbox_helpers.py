"""Step contexts with a real OS sandbox, for tests that run programs."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import pytest

from rustchain.domain.policy.model import Policy
from rustchain.platform.sandbox.selection import choose_sandbox
from rustchain.steps.support.runtime import StepContext
from rustchain.steps.support.sandboxing import SANDBOX_SETTING, ProgramSandbox

MECHANISMS = ("bubblewrap", "landlock")


@cache
def sandbox(mechanism: str = "auto") -> ProgramSandbox:
    """The mechanism forced (probed once per test session); skips when it does not work here,
    fails instead under RUSTCHAIN_REQUIRE_SANDBOX=1 (CI: both mechanisms work on its machine)."""
    chosen = choose_sandbox({SANDBOX_SETTING: mechanism})
    if chosen.unavailable is not None:
        if os.environ.get("RUSTCHAIN_REQUIRE_SANDBOX") == "1":
            pytest.fail(f"no {mechanism} sandbox here: {chosen.unavailable}")
        pytest.skip(f"no {mechanism} sandbox here: {chosen.unavailable}")
    return chosen


def sandboxed_context(
    workspace: Path, timeout: float = 10, *, mechanism: str = "auto", policy: Policy | None = None
) -> StepContext:
    """One attempt's context whose programs run in the mechanism's sandbox."""
    return StepContext(
        "acme", "m1", "s1", workspace, timeout, policy=policy, sandbox=sandbox(mechanism)
    )
