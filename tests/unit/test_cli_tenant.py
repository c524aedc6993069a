"""The tenant a verb acts for: --tenant, else the token's, else `default`; never another one."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rustchain.cli.common import resolve_tenant, tenant_option
from rustchain.domain.access.credentials import Claims, Role
from rustchain.platform.credentials.tokens import ADMIN_TOKEN_FILE, issue

KEY = Ed25519PrivateKey.generate()


def _token(role: Role, tenant: str | None = None, tenants: tuple[str, ...] = ()) -> str:
    return issue(KEY, Claims(sub="someone", role=role, tenant=tenant, tenants=list(tenants)))


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RUSTCHAIN_HOME", str(tmp_path))
    monkeypatch.delenv("RUSTCHAIN_TOKEN", raising=False)
    return tmp_path


@click.command()
@tenant_option("Whose.")
def whose(tenant: str) -> None:
    click.echo(f"tenant={tenant}")


def _whose(*args: str, token: str | None = None) -> tuple[int, str]:
    env = {"RUSTCHAIN_TOKEN": token} if token else {}
    result = CliRunner().invoke(whose, list(args), env=env)
    return result.exit_code, result.output


def test_a_tenant_token_names_the_tenant_when_tenant_is_absent() -> None:
    assert _whose(token=_token(Role.TENANT, "alpha")) == (0, "tenant=alpha\n")
    assert _whose("--tenant", "alpha", token=_token(Role.TENANT, "alpha")) == (0, "tenant=alpha\n")


def test_tenant_naming_another_tenant_than_the_token_is_one_refusal_naming_both() -> None:
    code, output = _whose("--tenant", "beta", token=_token(Role.TENANT, "alpha"))

    assert code == 2
    assert output == (
        "rustchain: --tenant beta is not the token's tenant (alpha): a tenant's token acts for"
        " its own tenant only; drop --tenant or use a token of beta\n"
    )


def test_without_a_tenant_token_the_tenant_is_given_or_default(home: Path) -> None:
    assert _whose() == (0, "tenant=default\n")
    assert _whose("--tenant", "beta") == (0, "tenant=beta\n")
    # The embedded deployment's admin token (in the home) acts for every tenant.
    (home / ADMIN_TOKEN_FILE).write_text(_token(Role.ADMIN))
    assert _whose("--tenant", "beta") == (0, "tenant=beta\n")
    assert _whose() == (0, "tenant=default\n")


def test_an_unreadable_token_leaves_the_choice_to_the_deployment() -> None:
    assert _whose("--tenant", "beta", token="not-a-jwt") == (0, "tenant=beta\n")


def test_an_auditor_token_of_one_tenant_names_it_and_of_many_asks_which(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _whose(token=_token(Role.AUDITOR, tenants=("alpha",))) == (0, "tenant=alpha\n")
    code, output = _whose(token=_token(Role.AUDITOR, tenants=("alpha", "gamma")))
    assert code == 2
    assert "the token reads tenants alpha, gamma: name one with --tenant" in output
    monkeypatch.setenv("RUSTCHAIN_TOKEN", _token(Role.AUDITOR, tenants=("alpha", "gamma")))
    assert resolve_tenant("gamma") == "gamma"
    with pytest.raises(SystemExit):
        resolve_tenant("beta")


def test_a_verb_that_requires_a_tenant_takes_the_tokens() -> None:
    assert resolve_tenant(None, required=False) == "default"
    with pytest.raises(click.UsageError, match="--tenant is required"):
        resolve_tenant(None, required=True)
