"""`rustchain token create`: signed credentials for tenants, auditors and admins."""

from __future__ import annotations

import re

import click
from pydantic import ValidationError

from rustchain.domain.access.credentials import Claims, Role
from rustchain.platform.credentials.signing_keys import (
    TOKEN_KEYS,
    SigningKeyError,
    ensure_key_pair,
    load_private_key,
)
from rustchain.platform.credentials.tokens import TOKEN_LIFETIME_SECONDS, issue
from rustchain.platform.storage.home import rustchain_home

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_DURATION = re.compile(r"(\d+)([smhd]?)")


class Duration(click.ParamType[int]):
    """A lifetime: seconds, or a number with s, m, h or d (`90d`, `12h`)."""

    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        """The duration in seconds, or a usage error naming the option."""
        if isinstance(value, int):
            return value
        matched = _DURATION.fullmatch(str(value).strip())
        seconds = int(matched[1]) * UNITS[matched[2] or "s"] if matched else 0
        if seconds < 1:
            self.fail(f"expected a duration such as 3600, 90m, 12h or 30d, found {value!r}")
        return seconds


@click.group()
def token() -> None:
    """Create credentials (signed with the deployment's private token key)."""


@token.command()
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--tenant", help="The tenant a tenant token acts for.")
@click.option("--tenants", default="", help="Comma-separated tenants an auditor token may read.")
@click.option("--subject", default=None, help="Who holds it (default: the role and tenant).")
@click.option(
    "--expires",
    type=Duration(),
    default=f"{int(TOKEN_LIFETIME_SECONDS // 86_400)}d",
    show_default=True,
    help="How long it is valid: seconds, or with s, m, h or d (every token expires).",
)
def create(role: str, tenant: str | None, tenants: str, subject: str | None, expires: int) -> None:
    """Print a new token.

    The deployment's private token key comes from RUSTCHAIN_TOKEN_SIGNING_KEY(_FILE), else
    $RUSTCHAIN_HOME/keys/token-signing.pem, made there when the home has none.
    """
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
    home = rustchain_home()
    try:
        key = load_private_key(home, TOKEN_KEYS)
        if key is None:
            key, created = ensure_key_pair(home, TOKEN_KEYS)
            if created:
                click.echo(
                    f"rustchain token: made the deployment's token key pair in"
                    f" {TOKEN_KEYS.private_path(home).parent}",
                    err=True,
                )
    except SigningKeyError as error:
        raise click.UsageError(str(error)) from None
    click.echo(issue(key, claims, expires_in=expires))
