"""The sandbox overhead metric records the set-up the mechanism measured, never the run time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from rustchain.platform.telemetry import sandbox_timing
from rustchain.platform.telemetry.sandbox_timing import TimedSandbox
from rustchain.steps.support.sandboxing import ProgramResult, SandboxedProgram


class FakeHistogram:
    def __init__(self) -> None:
        self.points: list[tuple[float, dict[str, Any]]] = []

    def record(self, value: float, attributes: dict[str, Any]) -> None:
        self.points.append((value, attributes))


class FakeInstruments:
    def __init__(self) -> None:
        self.sandbox_run_duration = FakeHistogram()
        self.sandbox_setup_duration = FakeHistogram()


class FakeClock:
    """perf_counter for the module under test: a run moves it on by its length."""

    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        return self.now


CLOCK = FakeClock()


class FakeSandbox:
    name = "bubblewrap"
    unavailable = None

    def __init__(self, setup: float | None, run_seconds: float) -> None:
        self.setup = setup
        self.run_seconds = run_seconds

    async def run(self, program: SandboxedProgram) -> ProgramResult:
        CLOCK.now += self.run_seconds  # the program ran this long
        return ProgramResult(0, b"", b"", setup_seconds=self.setup)


PROGRAM = SandboxedProgram(["true"], Path("/w"), Path("/w"), {}, 5, 10)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> FakeInstruments:
    fake = FakeInstruments()
    monkeypatch.setattr(sandbox_timing, "instruments", lambda: fake)
    monkeypatch.setattr(sandbox_timing, "time", CLOCK)
    return fake


def test_the_overhead_is_the_mechanisms_setup_not_the_run(recorded: FakeInstruments) -> None:
    asyncio.run(TimedSandbox(FakeSandbox(setup=0.004, run_seconds=0.05)).run(PROGRAM))

    assert recorded.sandbox_setup_duration.points == [(0.004, {"mechanism": "bubblewrap"})]
    ((wall, labels),) = recorded.sandbox_run_duration.points
    assert wall == pytest.approx(0.05) and labels == {"mechanism": "bubblewrap", "outcome": "ok"}


def test_a_run_without_a_measured_setup_records_no_overhead(recorded: FakeInstruments) -> None:
    asyncio.run(TimedSandbox(FakeSandbox(setup=None, run_seconds=0)).run(PROGRAM))

    assert recorded.sandbox_setup_duration.points == []
    assert len(recorded.sandbox_run_duration.points) == 1
