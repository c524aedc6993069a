"""The verifier's refusals when it cannot decide, its command, and the verdict event."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import z3
from click.testing import CliRunner

from rustchain.cli.app import app
from rustchain.domain.events.envelope import EventDraft, EventEnvelope, seal_all
from rustchain.domain.plans.verdict import VerdictStatus
from rustchain.platform.storage.lease_fence import LeaseWrite
from rustchain.verifier.engine import VerifierSettings, verify_plan
from rustchain.verifier.recording import PLAN_VERIFIED, record_verdict
from tests.unit.compile_helpers import compile_text
from tests.unit.verifier_helpers import GENERATORS, VERIFIER_DATA, named_policy, verify

SYMBOLIC = """version: "1.0"
name: symbolic
variables:
  dir: {type: string, default: out, pattern: "[a-z]{1,20}"}
steps:
  - id: write
    step_type: create_file
    parameters: {path: "{dir}/report.txt"}
"""


class _UndecidedSolver:
    """A solver that always runs out of time."""

    def __init__(self) -> None:
        self.timeout: object = None

    def set(self, key: str, value: object) -> None:
        self.timeout = value

    def add(self, *constraints: object) -> None:
        del constraints

    def check(self) -> Any:
        return z3.unknown

    def reason_unknown(self) -> str:
        return "timeout"


def _plan(text: str = SYMBOLIC) -> Any:
    compilation = compile_text(text)
    assert compilation.plan is not None
    return compilation.plan


def test_an_undecided_query_is_a_refusal_naming_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(z3, "Solver", _UndecidedSolver)

    verdict = verify_plan(_plan(), named_policy(None), GENERATORS, VerifierSettings(timeout_ms=7))

    assert verdict.status is VerdictStatus.UNKNOWN
    assert not verdict.safe
    assert verdict.undecided[0].rule == "filesystem.workspace"
    assert verdict.undecided[0].step_id == "write"
    assert "7 ms" in verdict.undecided[0].explanation
    assert verdict.render()[0].startswith(
        "mission.yaml:6:5: error: undecided: [filesystem.workspace]"
    )


def test_a_step_type_without_constraint_generator_is_never_safe() -> None:
    generators = {k: v for k, v in GENERATORS.items() if k != "create_file"}

    verdict = verify_plan(_plan(), named_policy(None), generators)

    assert verdict.status is VerdictStatus.UNKNOWN
    assert verdict.undecided[0].rule == "verifier.coverage"


def test_known_texts_and_enumerations_need_no_solver_and_symbols_do() -> None:
    concrete = _plan(SYMBOLIC.replace('"{dir}/report.txt"', "out/report.txt"))
    enumerated = _plan(SYMBOLIC.replace('pattern: "[a-z]{1,20}"', "enum: [a, b]"))

    assert verify(concrete, named_policy(None)).queries == 0
    assert verify(enumerated, named_policy(None)).queries == 0
    # A safe symbolic path: one query per rule ('..', absolute, denied; no read-only paths).
    assert verify(_plan(), named_policy(None)).queries == 3


TWO_VARIABLES = """version: "1.0"
name: two
variables:
  a: {type: string, default: out, pattern: "PATTERN_A"}
  b: {type: string, default: out, pattern: "PATTERN_B"}
steps:
  - id: first
    step_type: create_file
    parameters: {path: "{a}/one.txt"}
  - id: second
    step_type: create_file
    parameters: {path: "{b}/two.txt"}
"""


def _two(pattern_a: str, pattern_b: str) -> Any:
    return _plan(TWO_VARIABLES.replace("PATTERN_A", pattern_a).replace("PATTERN_B", pattern_b))


def test_texts_over_variables_of_the_same_type_share_their_solver_queries() -> None:
    same = verify(_two("[a-z]{1,20}", "[a-z]{1,20}"), named_policy(None))
    different = verify(_two("[a-z]{1,20}", "[a-z]{1,19}"), named_policy(None))

    assert same.safe and different.safe
    assert same.queries == 3  # the second step asks what the first asked
    assert different.queries == 6


def test_a_shared_violation_names_each_steps_own_variable() -> None:
    verdict = verify(_two("[a-z./]{1,20}", "[a-z./]{1,20}"), named_policy(None))

    assert not verdict.safe and verdict.queries <= 3
    by_step = {v.step_id: v for v in verdict.violations}
    assert set(by_step) == {"first", "second"}
    assert set(by_step["first"].counterexample) == {"a"}
    assert set(by_step["second"].counterexample) == {"b"}
    assert by_step["second"].counterexample["b"] == by_step["first"].counterexample["a"]


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, ["verify", *args])


def test_verify_exits_0_on_a_safe_mission_and_prints_the_proof() -> None:
    result = _run(str(VERIFIER_DATA / "safe" / "dir_pattern_path.yaml"))

    assert result.exit_code == 0, result.output
    assert "safe under policy 'default'" in result.output


def test_verify_exits_1_and_prints_violations_like_a_compiler() -> None:
    path = VERIFIER_DATA / "unsafe" / "path_variable_create_file.yaml"

    result = _run(str(path))

    assert result.exit_code == 1
    first = result.output.splitlines()[0]
    assert first.startswith(f"{path}:7:5: error: [filesystem.workspace] step 'write': path ")
    assert '(counterexample: dir="' in first


def test_verify_uses_the_named_policy_and_prints_json() -> None:
    policy = VERIFIER_DATA / "policies" / "strict.yaml"
    mission = VERIFIER_DATA / "safe" / "strict_tenant_chain.yaml"

    result = _run(str(mission), "--policy", str(policy), "--json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["status"] == "safe"
    assert document["policy_name"] == "strict"
    assert document["policy_hash"] == named_policy("strict").content_hash


def test_verify_exits_2_on_a_broken_policy_and_1_on_a_broken_mission(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("network:\n  portz: [1]\n")
    mission = tmp_path / "mission.yaml"
    mission.write_text("version: 1\n")

    bad_policy = _run(
        str(VERIFIER_DATA / "safe" / "dir_pattern_path.yaml"), "--policy", str(policy)
    )
    bad_mission = _run(str(mission))

    assert bad_policy.exit_code == 2
    assert f"{policy}:2:10: error:" in bad_policy.output
    assert bad_mission.exit_code == 1
    assert "mission.yaml: invalid" in bad_mission.output


class FakeEventStore:
    """An in-memory event store: chains per mission, as the real one seals them."""

    def __init__(self) -> None:
        self.events: list[EventEnvelope] = []
        self.heads: dict[tuple[str, str], EventEnvelope] = {}

    def append(
        self, drafts: Sequence[EventDraft], *, lease: LeaseWrite | None = None
    ) -> list[EventEnvelope]:
        sealed = seal_all(list(drafts), self.heads)
        self.events += sealed
        return sealed

    def mission_events(self, tenant: str, mission_id: str) -> list[EventEnvelope]:
        return [e for e in self.events if (e.tenant, e.mission_id) == (tenant, mission_id)]


def test_a_verdict_is_kept_as_an_event_with_plan_and_policy_hashes() -> None:
    store = FakeEventStore()
    verdict = verify(_plan(), named_policy(None))
    clock = lambda: datetime(2026, 1, 1, tzinfo=UTC)  # noqa: E731

    first = record_verdict(store, verdict, "acme", "m1", lambda: str(uuid.uuid4()), clock)
    second = record_verdict(store, verdict, "acme", "m1", lambda: str(uuid.uuid4()), clock)

    assert first.type == PLAN_VERIFIED and first.service == "verifier"
    assert first.payload["plan_hash"] == verdict.plan_hash
    assert first.payload["policy_hash"] == named_policy(None).content_hash
    assert first.payload["status"] == "safe"
    assert (first.aggregate_version, second.aggregate_version) == (1, 2)
    assert second.previous_hash == first.hash


def test_verifications_in_parallel_threads_agree_with_one_alone() -> None:
    from concurrent.futures import ThreadPoolExecutor

    paths = sorted((VERIFIER_DATA / "unsafe").glob("*.yaml"))[:12]
    plans = [(compile_text(p.read_text(), p.name).plan, p) for p in paths]
    policy = named_policy(None)

    def statuses() -> list[str]:
        return [verify(plan, policy).status.value for plan, _ in plans]

    alone = statuses()
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda _: statuses(), range(4)))

    assert all(result == alone for result in together)
