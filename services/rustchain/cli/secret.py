"""`rustchain secret set|list|delete`: a tenant's secrets (values never on a command line)."""

from __future__ import annotations

import sys

import click

from rustchain.cli.common import tenant_option
from rustchain.domain.events.names import EventNameError
from rustchain.platform.storage.secret_store import FileSecretStore, SecretNameError


def _store() -> FileSecretStore:
    return FileSecretStore.from_environ()


def _usage(action: str, error: ValueError) -> click.UsageError:
    return click.UsageError(f"cannot {action}: {error}")


@click.group()
def secret() -> None:
    """Keep a tenant's secrets: missions use them as {secrets.NAME}.

    The store is RUSTCHAIN_SECRETS_DIR, else $RUSTCHAIN_HOME/secrets: one file per name under a
    folder per tenant (a Kubernetes Secret volume's layout).
    """


@secret.command("set")
@tenant_option("The tenant whose secret it is.", required=True)
@click.argument("name")
def set_secret(tenant: str, name: str) -> None:
    """Store NAME's value, read from standard input (one trailing newline is dropped)."""
    if sys.stdin.isatty():
        # Typed at a terminal: not echoed, so it stays off the screen and its scrollback.
        value = click.prompt(f"value of {name}", hide_input=True, err=True)
    else:
        try:
            value = sys.stdin.buffer.read().decode("utf-8")
        except UnicodeDecodeError:
            raise click.UsageError("cannot set the secret: its value is not UTF-8 text") from None
        value = value.removesuffix("\n").removesuffix("\r")
    if not value:
        raise click.UsageError("cannot set the secret: standard input was empty")
    try:
        _store().set(tenant, name, value)
    except (SecretNameError, EventNameError) as error:
        raise _usage("set the secret", error) from None
    click.echo(f"secret {name} of tenant {tenant} set")


@secret.command("list")
@tenant_option("The tenant whose secrets to name.", required=True)
def list_secrets(tenant: str) -> None:
    """The names of the tenant's secrets, one a line (never their values)."""
    try:
        names = _store().names(tenant)
    except EventNameError as error:
        raise _usage("list the secrets", error) from None
    for name in names:
        click.echo(name)


@secret.command("delete")
@tenant_option("The tenant whose secret it is.", required=True)
@click.argument("name")
def delete_secret(tenant: str, name: str) -> None:
    """Remove NAME from the tenant's secrets."""
    try:
        removed = _store().delete(tenant, name)
    except (SecretNameError, EventNameError) as error:
        raise _usage("delete the secret", error) from None
    if not removed:
        raise click.UsageError(f"tenant {tenant} has no secret named {name}")
    click.echo(f"secret {name} of tenant {tenant} deleted")
