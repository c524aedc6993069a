"""What the verbs share: one way to fail, the tenant a command acts for, the NATS it reads.

Kept light (no gRPC, NATS or solver): every verb imports it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

import click

from rustchain.cli import exit_codes
from rustchain.platform.storage.home import rustchain_home

DEFAULT_TENANT = "default"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
F = TypeVar("F", bound=Callable[..., object])


def fail(message: str, code: int) -> NoReturn:
    """End the command with one line on standard error and the exit code."""
    click.echo(f"rustchain: {message}", err=True)
    sys.exit(code)


def token_tenants() -> tuple[str, ...] | None:
    """The tenants the CLI's token (--token, RUSTCHAIN_TOKEN, else the home's admin token) acts
    for: a tenant's token its one tenant, an auditor's the tenants it reads; None for an admin's
    token, no token or one that cannot be read (the deployment refuses that one itself).

    The token is read, not verified: it only chooses the tenant; the deployment authorises.
    """
    # Imported here: the JWT library is only for the verbs that take a tenant.
    from rustchain.domain.access.credentials import Role
    from rustchain.platform.credentials.tokens import cli_token, unverified_claims

    token = cli_token(rustchain_home(), None)
    claims = unverified_claims(token) if token else None
    if claims is None or claims.role is Role.ADMIN:
        return None
    if claims.role is Role.TENANT:
        return (claims.tenant,) if claims.tenant else None
    return tuple(claims.tenants)


def resolve_tenant(given: str | None, required: bool = False) -> str:
    """--tenant, else the token's tenant, else `default` (unless the verb requires one).

    A --tenant the token does not act for is refused here, in one line naming both, rather than
    by the deployment after the work has started.
    """
    mine = token_tenants()
    if mine is None:
        if given is not None:
            return given
        if required:
            raise click.UsageError("--tenant is required (or a tenant's token: --token)")
        return DEFAULT_TENANT
    if given is None:
        if len(mine) == 1:
            return mine[0]
        raise click.UsageError(
            f"the token reads tenants {', '.join(mine) or '(none)'}: name one with --tenant"
        )
    if given not in mine:
        fail(
            f"--tenant {given} is not the token's tenant ({', '.join(mine) or 'none'}):"
            " a tenant's token acts for its own tenant only; drop --tenant or use a token of"
            f" {given}",
            exit_codes.USAGE,
        )
    return given


def tenant_option(help_text: str, required: bool = False) -> Callable[[F], F]:
    """--tenant for a verb: when absent, the tenant is the token's (see resolve_tenant)."""
    default = "" if required else f", else {DEFAULT_TENANT}"

    def resolve(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
        return resolve_tenant(value, required)

    return click.option(
        "--tenant",
        callback=resolve,
        help=f"{help_text} Default: the token's tenant{default}.",
    )


def nats_url(explicit: str | None) -> str:
    """--nats-url, else NATS_URL, else the deployment's (endpoints.json), else 127.0.0.1:4222."""
    if explicit:
        return explicit
    return home_nats_url()[0] or DEFAULT_NATS_URL


def home_nats_url(explicit: str | None = None) -> tuple[str | None, str]:
    """The NATS of this home's own deployment (--nats-url, else NATS_URL, else the running
    deployment's endpoints), or None and why there is none: never whatever else listens."""
    # Imported here: the NATS client behind them is for the verbs that read JetStream.
    from rustchain.platform.deployment.endpoints import (
        EndpointsError,
        configured_endpoints,
        process_alive,
    )
    from rustchain.platform.nats.server import NATS_URL_VARIABLE, external_nats_url

    if explicit:
        return explicit, "--nats-url"
    external = external_nats_url()
    if external is not None:
        return external, NATS_URL_VARIABLE
    home = rustchain_home()
    try:
        endpoints = configured_endpoints(home)
    except EndpointsError as error:
        fail(str(error), exit_codes.USAGE)
    if endpoints is None or not endpoints.nats_url:
        return None, f"no deployment runs on {home} and {NATS_URL_VARIABLE} is not set"
    if endpoints.pid is not None and not process_alive(endpoints.pid):
        return None, f"the deployment of {home} (pid {endpoints.pid}) is gone"
    return endpoints.nats_url, f"the deployment of {home}"
