"""`rustchain secret` keeps values off command lines and outputs; the verifier names the secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from rustchain.cli.app import app
from tests.unit.verifier_helpers import VERIFIER_DATA, named_policy, plan_of, verify

VALUE = "s3cr3t-value-0042"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RUSTCHAIN_HOME", str(tmp_path))
    monkeypatch.delenv("RUSTCHAIN_SECRETS_DIR", raising=False)
    return tmp_path


def _cli(*args: str, given: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), input=given)
    return result.exit_code, result.output


def test_set_reads_standard_input_and_nothing_prints_the_value(home: Path) -> None:
    set_code, set_output = _cli("secret", "set", "--tenant", "acme", "API_KEY", given=VALUE + "\n")
    list_code, names = _cli("secret", "list", "--tenant", "acme")

    assert (set_code, list_code) == (0, 0)
    assert (home / "secrets" / "acme" / "API_KEY").read_text() == VALUE
    assert names == "API_KEY\n"
    assert VALUE not in set_output + names


def test_the_store_root_can_be_a_mounted_folder(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUSTCHAIN_SECRETS_DIR", str(tmp_path / "mounted"))

    code, _ = _cli("secret", "set", "--tenant", "acme", "K", given="v")

    assert code == 0
    assert (tmp_path / "mounted" / "acme" / "K").read_text() == "v"


@pytest.mark.parametrize(
    ("args", "given", "message"),
    [
        (("set", "--tenant", "acme", "bad-name"), "v", "invalid secret name 'bad-name'"),
        (("set", "--tenant", "acme", "K"), "", "standard input was empty"),
        (("set", "--tenant", "Not A Tenant", "K"), "v", "cannot set the secret"),
        (("delete", "--tenant", "acme", "NONE"), None, "tenant acme has no secret named NONE"),
    ],
)
def test_bad_names_empty_values_and_missing_secrets_are_usage_errors(
    home: Path, args: tuple[str, ...], given: str | None, message: str
) -> None:
    code, output = _cli("secret", *args, given=given)

    assert code == 2
    assert message in output


def test_delete_removes_the_secret(home: Path) -> None:
    _cli("secret", "set", "--tenant", "acme", "K", given="v")

    code, _ = _cli("secret", "delete", "--tenant", "acme", "K")

    assert code == 0
    assert _cli("secret", "list", "--tenant", "acme") == (0, "")


def test_the_verifier_finding_names_the_step_and_the_secret() -> None:
    path = VERIFIER_DATA / "unsafe" / "secret_in_argv.yaml"

    verdict = verify(plan_of(path), named_policy(None))

    [finding] = [f for f in verdict.violations if f.rule == "data_flow.secrets"]
    assert (finding.step_id, finding.field) == ("call", "args[0]")
    assert "receives the secret 'API_KEY', which may not reach a command" in finding.explanation
    assert finding.counterexample == {"secrets.API_KEY": "***"}
