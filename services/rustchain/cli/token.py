"""`rustchain token create`: signed credentials for tenants, auditors and admins."""

from __future__ import annotations

import click
from pydantic import ValidationError

from rustchain.cli.app import app
from rustchain.domain.credentials import Claims, Role
from rustchain.platform.home import rustchain_home
from rustchain.platform.tokens import issue, signing_key


@app.group()
def token() -> None:
    """Create credentials (signed with the deployment's key)."""


@token.command()
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--tenant", help="The tenant a tenant token acts for.")
@click.option("--tenants", default="", help="Comma-separated tenants an auditor token may read.")
@click.option("--subject", default=None, help="Who holds it (default: the role and tenant).")
@click.option("--expires", type=click.IntRange(1), default=None, help="Seconds until it expires.")
def create(
    role: str, tenant: str | None, tenants: str, subject: str | None, expires: int | None
) -> None:
    """Print a new token."""
    granted = [t for t in (part.strip() for part in tenants.split(",")) if t]
    try:
        claims = Claims(
            sub=subject or f"{role}:{tenant or ','.join(granted) or 'all'}",
            role=Role(role),
            tenant=tenant,
            tenants=granted,
        )
    except ValidationError as error:
        problem = error.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise click.UsageError(problem) from None
    key = signing_key(rustchain_home(), create=True)
    assert key is not None
    click.echo(issue(key, claims, expires_in=expires))
