"""Deterministic re-execution: recorded inputs against a re-rendering from the recorded facts."""

from __future__ import annotations

from typing import Any

from rustchain.domain.runs import run_decisions
from rustchain.domain.runs.mission_run import MissionRun
from rustchain.domain.runs.reexecution import (
    ABSENT,
    DIVERGED,
    NOT_RECORDED,
    SAME,
    differences,
    reexecute,
)
from rustchain.domain.runs.run_events import RunEvent, StepStarted, StepSucceeded
from tests.replay import Replay, StepFailedError
from tests.unit.compile_helpers import plan_of

MISSION = """\
version: "1.0"
name: pipeline
variables:
  who: {type: string, default: Ada}
steps:
  - {id: fetch, name: F, step_type: noop, parameters: {greeting: "hello {who}"}}
  - id: shape
    name: S
    step_type: noop
    depends_on: [fetch]
    parameters: {text: "{fetch.output}", list: ["{fetch.size}", 2], fixed: 1}
  - id: send
    name: T
    step_type: noop
    depends_on: [shape]
    parameters: {body: "sent {shape.output}"}
"""


def _outputs(step_id: str, attempt: int) -> Any:
    return {"fetch": {"size": 3}, "shape": "shaped", "send": "done"}[step_id]


def _history(outcome: Any = _outputs, variables: dict[str, Any] | None = None) -> list[RunEvent]:
    replay = Replay(plan_of(MISSION), variables or {"who": "Ada"})
    replay.run_to_end(outcome)
    return replay.history


def _replace_output(history: list[RunEvent], step_id: str, output: Any) -> list[RunEvent]:
    return [
        e.model_copy(update={"output": output})
        if isinstance(e, StepSucceeded) and e.step_id == step_id
        else e
        for e in history
    ]


def test_an_untouched_history_re_renders_every_recorded_input_the_same() -> None:
    report = reexecute(_history())

    assert report.agrees
    assert [s.step_id for s in report.steps] == ["fetch", "shape", "send"]
    assert [(a.step_id, a.status) for a in report.attempts] == [
        ("fetch", SAME),
        ("shape", SAME),
        ("send", SAME),
    ]


def test_a_tampered_output_is_located_in_the_inputs_of_the_step_that_used_it() -> None:
    report = reexecute(_replace_output(_history(), "fetch", {"size": 4}))

    assert not report.agrees
    located = [(d.step_id, d.attempt, d.path, d.recorded, d.now) for d in report.divergences]
    # In the order of the recorded inputs, which the store keeps with their keys sorted.
    assert located == [("shape", 1, "list[0]", 3, 4), ("shape", 1, "text.size", 3, 4)]
    assert report.divergences[0].describe() == "step 'shape' attempt 1, list[0]: recorded 3, now 4"
    statuses = {a.step_id: a.status for a in report.attempts}
    assert statuses == {"fetch": SAME, "shape": DIVERGED, "send": SAME}


def test_an_output_that_can_no_longer_be_rendered_from_is_a_divergence_of_the_step() -> None:
    report = reexecute(_replace_output(_history(), "fetch", "not a mapping"))

    [divergence] = report.divergences
    assert (divergence.step_id, divergence.path) == ("shape", "")
    assert divergence.recorded == {"text": {"size": 3}, "list": [3, 2], "fixed": 1}
    assert divergence.now == "<not rendered: KeyError: 'size'>"
    assert "(all parameters)" in divergence.describe()


def test_a_tampered_recorded_input_is_a_divergence() -> None:
    history = [
        e.model_copy(update={"inputs": {"body": "sent elsewhere"}})
        if isinstance(e, StepStarted) and e.step_id == "send"
        else e
        for e in _history()
    ]

    [divergence] = reexecute(history).divergences

    assert (divergence.step_id, divergence.path) == ("send", "body")
    assert (divergence.recorded, divergence.now) == ("sent elsewhere", "sent shaped")


def test_a_change_in_how_the_code_renders_is_a_divergence() -> None:
    def renders_differently(
        run: MissionRun, step_id: str
    ) -> tuple[dict[str, Any] | None, str | None]:
        inputs, error = run_decisions.rendered_inputs(run, step_id)
        if step_id == "shape" and inputs is not None:
            inputs = {**inputs, "fixed": "1", "added": True}
        return inputs, error

    report = reexecute(_history(), renders_differently)

    located = [(d.step_id, d.path, d.recorded, d.now) for d in report.divergences]
    assert located == [("shape", "fixed", 1, "1"), ("shape", "added", ABSENT, True)]


def test_every_attempt_is_checked_and_steps_never_started_are_named() -> None:
    def fetch_fails_once_shape_fails(step_id: str, attempt: int) -> Any:
        if step_id == "shape" or (step_id == "fetch" and attempt == 1):
            raise StepFailedError("boom")
        return _outputs(step_id, attempt)

    text = MISSION.replace(
        "name: F, step_type: noop,",
        "name: F, step_type: noop, retry: {max_attempts: 2, backoff_seconds: 1},",
    )
    replay = Replay(plan_of(text), {"who": "Ada"})
    replay.run_to_end(fetch_fails_once_shape_fails)

    report = reexecute(replay.history)

    assert report.agrees
    assert [(a.step_id, a.attempt) for a in report.attempts] == [
        ("fetch", 1),
        ("fetch", 2),
        ("shape", 1),
    ]
    [send] = [s for s in report.steps if s.step_id == "send"]
    assert send.attempts == ()
    assert send.never_started == "skipped: fail_fast: step 'shape' failed"


def test_inputs_that_could_not_be_rendered_are_recorded_and_compared() -> None:
    history = _history(lambda step_id, attempt: {"fetch": {}, "shape": "s", "send": "d"}[step_id])
    [shape] = [e for e in history if isinstance(e, StepStarted) and e.step_id == "shape"]

    untouched = reexecute(history)
    repaired = reexecute(_replace_output(history, "fetch", {"size": 5}))

    assert shape.inputs is None and shape.input_error == "KeyError: 'size'"
    assert untouched.agrees
    [divergence] = repaired.divergences
    assert divergence.recorded == "<not rendered: KeyError: 'size'>"
    assert divergence.now == {"text": {"size": 5}, "list": [5, 2], "fixed": 1}


def test_version_1_starts_are_reported_as_not_recorded_never_as_agreeing() -> None:
    history = [
        e.model_copy(update={"inputs": None, "input_error": None})
        if isinstance(e, StepStarted)
        else e
        for e in _history()
    ]

    report = reexecute(history)

    assert {a.status for a in report.attempts} == {NOT_RECORDED}
    assert report.divergences == []


def test_a_history_that_cannot_be_folded_is_a_problem_not_a_crash() -> None:
    history = _history()
    broken = [*history[:1], StepSucceeded(step_id="send", attempt=1), *history[1:]]

    report = reexecute(broken)

    assert not report.agrees
    assert report.problems == [
        "fact 2 (StepSucceeded) cannot follow the ones before it: StepSucceeded for step 'send'"
        " while it is pending; re-execution stopped there"
    ]
    assert reexecute([]).problems == ["the history does not begin with MissionStarted"]


def test_a_plan_that_no_longer_hashes_to_its_recorded_hash_is_a_problem() -> None:
    history = _history()
    started = history[0].model_copy(update={"plan_hash": "0" * 64})

    report = reexecute([started, *history[1:]])

    assert not report.agrees
    assert "not to the recorded 0000" in report.problems[0]


def test_differences_name_the_path_of_each_differing_leaf() -> None:
    recorded = {"a": {"b": [1, 2, {"c": "x"}]}, "gone": 1, "n": 1}
    now = {"a": {"b": [1, 3, {"c": "y"}]}, "new": 2, "n": True}

    assert differences(recorded, now) == [
        ("a.b[1]", 2, 3),
        ("a.b[2].c", "x", "y"),
        ("gone", 1, ABSENT),
        ("n", 1, True),
        ("new", ABSENT, 2),
    ]
    assert differences([1, 2], [1, 2, 3]) == [("", [1, 2], [1, 2, 3])]
    assert differences({"x": [1]}, {"x": [1]}) == []
