"""The size decisions: no fact over the event limit is recorded, and nothing is cut silently."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rustchain.domain.access.quotas import TenantQuotas
from rustchain.domain.events.size import (
    EventTooLargeError,
    bounded_outputs,
    check_max_payload,
    payload_bytes,
)
from rustchain.domain.runs import run_decisions as decide
from rustchain.domain.runs.mission_run import MissionRun
from rustchain.domain.runs.run_events import StepFailed, StepSucceeded
from tests.unit.compile_helpers import plan_of

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LIMIT = 16 * 1024
MISSION = """\
version: "1.0"
name: sizes
variables:
  text: {type: string}
steps:
  - {id: echo, step_type: noop, parameters: {message: "{text}"}}
"""


def run_of(text: str) -> MissionRun:
    """A run of the mission whose one step's message is `text`, started and not yet stepped."""
    run = MissionRun.fold(decide.start_mission(plan_of(MISSION), {"text": text}, "ws"))
    decide.next_events(run, NOW)
    return run


def test_payload_size_is_the_utf8_length_of_the_canonical_json() -> None:
    assert payload_bytes({"b": 1, "a": "é"}) == len('{"a":"é","b":1}'.encode())


def test_an_output_within_the_limit_is_a_success() -> None:
    run = run_of("x")
    [event] = decide.step_finished(run, "echo", 1, "y" * 1000, NOW, LIMIT)
    assert isinstance(event, StepSucceeded) and event.output == "y" * 1000


def test_an_output_over_the_limit_fails_the_step_naming_size_limit_and_setting() -> None:
    run = run_of("x")
    [event] = decide.step_finished(run, "echo", 1, "y" * (LIMIT + 1), NOW, LIMIT)
    assert isinstance(event, StepFailed)
    assert f"its output takes {LIMIT + 3:,} bytes" in event.error
    assert f"({LIMIT:,} bytes, RUSTCHAIN_MAX_EVENT_BYTES)" in event.error
    assert payload_bytes(event.error) < LIMIT


def test_an_error_text_over_the_limit_is_replaced_by_a_marked_excerpt() -> None:
    run = run_of("x")
    [event] = decide.step_failed(run, "echo", 1, "z" * (LIMIT * 2), NOW, max_event_bytes=LIMIT)
    assert isinstance(event, StepFailed)
    assert event.error.startswith(f"its error text takes {LIMIT * 2 + 2:,} bytes")
    assert "Its first 2000 characters: " + "z" * 2000 in event.error
    assert payload_bytes(event.error) < LIMIT


def test_inputs_over_the_limit_are_not_recorded_and_say_why() -> None:
    run = run_of("x" * LIMIT)
    started = decide.start_step(run, "echo", 1, LIMIT)
    assert started.inputs is None
    assert started.input_error is not None
    assert started.input_error.startswith("the rendering of its inputs takes")
    assert "RUSTCHAIN_MAX_EVENT_BYTES" in started.input_error


def test_inputs_within_the_limit_are_recorded() -> None:
    run = run_of("x" * 100)
    assert decide.start_step(run, "echo", 1, LIMIT).inputs == {"message": "x" * 100}


def test_the_event_limit_is_a_deployment_setting_with_a_default_below_nats_max_payload() -> None:
    assert TenantQuotas().max_event_bytes == 512 * 1024
    settings = {"RUSTCHAIN_MAX_EVENT_BYTES": "100000"}
    assert TenantQuotas.from_settings(settings).max_event_bytes == 100_000
    with pytest.raises(ValueError, match="RUSTCHAIN_MAX_EVENT_BYTES expects a whole number"):
        TenantQuotas.from_settings({"RUSTCHAIN_MAX_EVENT_BYTES": "big"})


def test_a_nats_server_too_small_for_the_event_limit_is_refused_naming_both_figures() -> None:
    check_max_payload(512 * 1024, 1024 * 1024)
    with pytest.raises(EventTooLargeError) as refused:
        check_max_payload(2_000_000, 1_048_576)
    message = str(refused.value)
    assert "1,048,576 bytes (max_payload)" in message
    assert "2,000,000 bytes (RUSTCHAIN_MAX_EVENT_BYTES)" in message


def test_mission_outputs_too_large_together_are_replaced_each_saying_so() -> None:
    big = "y" * (LIMIT // 2)
    outputs = {"first": big, "second": big, "small": "ok"}

    bounded = bounded_outputs(outputs, LIMIT)

    assert bounded["small"] == "ok"
    for name in ("first", "second"):
        assert bounded[name].startswith("not recorded here: the outputs together take")
        assert f"this one takes {LIMIT // 2 + 2:,} bytes" in bounded[name]
    assert payload_bytes(bounded) < LIMIT
    assert bounded_outputs({"small": "ok"}, LIMIT) == {"small": "ok"}
