"""`{secrets.NAME}`: accepted by the compiler, kept as written when rendered, substituted only for
a runner, and masked wherever a value turns up."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rustchain.domain.language.references import Reference, ReferenceKind, scan
from rustchain.domain.language.secret_refs import (
    MASK,
    UnknownSecretError,
    mask,
    secret_digest,
    secret_names,
    substitute,
)
from rustchain.domain.plans.bindings import RenderContext, render
from rustchain.domain.runs import run_decisions as decide
from rustchain.domain.runs.mission_run import MissionRun
from rustchain.domain.runs.run_events import MissionStarted, StepStarted, run_event_payload
from rustchain.platform.storage.secret_store import FileSecretStore, SecretNameError
from tests.unit.compile_helpers import compile_text, messages, plan_of

USES_SECRET = """\
version: "1.0"
name: with-secret
variables:
  who: {type: string, default: ada}
steps:
  - id: call
    step_type: noop
    parameters: {message: "Bearer {secrets.API_KEY} for {who}"}
"""


def test_a_secret_reference_is_scanned_as_a_secret() -> None:
    [found] = list(scan("x {secrets.API_KEY} y", {}, {}))

    assert isinstance(found, Reference)
    assert (found.kind, found.name, found.text) == (
        ReferenceKind.SECRET,
        "API_KEY",
        "{secrets.API_KEY}",
    )


def test_the_compiler_accepts_a_secret_reference() -> None:
    compilation = compile_text(USES_SECRET)

    assert compilation.plan is not None, messages(compilation)


@pytest.mark.parametrize(
    ("mission", "expected"),
    [
        (
            USES_SECRET.replace("secrets.API_KEY", "secrets.API-KEY"),
            "bad secret reference {secrets.API-KEY}",
        ),
        (
            USES_SECRET.replace("- id: call", "- id: secrets"),
            "step id 'secrets' is reserved",
        ),
        (USES_SECRET.replace("  who:", "  secrets:"), "variable name 'secrets' is reserved"),
    ],
)
def test_the_compiler_refuses_a_bad_secret_name_and_the_reserved_namespace(
    mission: str, expected: str
) -> None:
    compilation = compile_text(mission)

    assert compilation.plan is None
    assert any(expected in m for m in messages(compilation)), messages(compilation)


def test_rendering_keeps_the_secret_reference_and_resolves_the_rest() -> None:
    context = RenderContext({"who": "ada"}, {}, {})

    rendered = render({"message": "Bearer {secrets.API_KEY} for {who}"}, context)

    assert rendered == {"message": "Bearer {secrets.API_KEY} for ada"}


def test_substitution_replaces_each_reference_and_names_an_unknown_secret() -> None:
    inputs = {"headers": {"A": "Bearer {secrets.K}"}, "args": ["{secrets.K}", "{secrets.J}x"]}

    assert substitute(inputs, {"K": "v1", "J": "v2"}) == {
        "headers": {"A": "Bearer v1"},
        "args": ["v1", "v2x"],
    }
    assert secret_names(inputs) == ["J", "K"]
    with pytest.raises(UnknownSecretError, match="unknown secret 'J'") as raised:
        substitute(inputs, {"K": "v1"})
    assert "v1" not in str(raised.value)


def test_masking_replaces_every_occurrence_longest_value_first() -> None:
    output = {"body": "token abc123 and abc", "list": ["abc123abc123", 7], "abc123": None}

    masked = mask(output, ["abc", "abc123", ""])

    assert masked == {"body": f"token {MASK} and {MASK}", "list": [MASK * 2, 7], MASK: None}
    assert mask("nothing here", ["abc"]) == "nothing here"


def test_the_digest_is_salted_per_mission_and_stable_within_one() -> None:
    first = secret_digest("salt-a", "K", "value")

    assert first == secret_digest("salt-a", "K", "value")
    assert first != secret_digest("salt-b", "K", "value")
    assert first != secret_digest("salt-a", "K", "other")
    assert "value" not in first


def test_a_mission_with_secrets_records_its_salt_and_references_only() -> None:
    [started] = decide.start_mission(plan_of(USES_SECRET), {"who": "ada"}, "/w", "s4lt")
    assert isinstance(started, MissionStarted)
    run = MissionRun.fold([started])

    [step] = decide.next_events(run, datetime(2026, 1, 1, tzinfo=UTC))

    assert run.secret_salt == "s4lt"
    assert isinstance(step, StepStarted)
    assert step.inputs == {"message": "Bearer {secrets.API_KEY} for ada"}


def test_a_mission_without_secrets_records_no_secret_fields() -> None:
    plain = USES_SECRET.replace("{secrets.API_KEY}", "x")
    [started] = decide.start_mission(plan_of(plain), {"who": "ada"}, "/w", "s4lt")

    assert "secret_salt" not in run_event_payload(started)
    step = StepStarted(step_id="a", attempt=1, inputs={})
    assert "secret_digests" not in run_event_payload(step)


def test_the_file_store_keeps_one_private_file_per_name(tmp_path: Path) -> None:
    store = FileSecretStore(tmp_path / "secrets")

    store.set("acme", "API_KEY", "v\n1")
    store.set("acme", "OTHER", "x")

    path = tmp_path / "secrets" / "acme" / "API_KEY"
    assert path.read_bytes() == b"v\n1"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700
    assert store.get("acme", "API_KEY") == "v\n1"
    assert store.get("beta", "API_KEY") is None
    assert store.names("acme") == ["API_KEY", "OTHER"]
    assert store.delete("acme", "OTHER") and not store.delete("acme", "OTHER")
    with pytest.raises(SecretNameError):
        store.get("acme", "../acme/API_KEY")


def test_the_file_store_reads_a_mounted_kubernetes_secret(tmp_path: Path) -> None:
    # A Secret volume: each key a symlink into a timestamped folder behind `..data`.
    mount = tmp_path / "secrets" / "acme"
    (mount / "..2026_01_01_00_00_00.1").mkdir(parents=True)
    (mount / "..2026_01_01_00_00_00.1" / "API_KEY").write_text("from-k8s")
    os.symlink("..2026_01_01_00_00_00.1", mount / "..data")
    os.symlink("..data/API_KEY", mount / "API_KEY")

    store = FileSecretStore.from_environ({"RUSTCHAIN_SECRETS_DIR": str(tmp_path / "secrets")})

    assert store.get("acme", "API_KEY") == "from-k8s"
    assert store.names("acme") == ["API_KEY"]
