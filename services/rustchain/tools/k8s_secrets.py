"""`python -m rustchain.tools.k8s_secrets --out DIR`: a Kubernetes deployment's Secret material.

It writes, one value per file (no trailing newline: kustomize's secretGenerator takes a file's bytes
as the value, and the signing key is read from the environment as is):

| file | what it is | Secret |
|---|---|---|
| `jwt.key` | the deployment's HS256 signing key | `rustchain-jwt` |
| `admin.token` | an admin token signed with it, for the services | `rustchain-admin-token` |
| `nats-auth.json` | the NATS auth callout's issuer seed and password | `rustchain-nats-callout` |
| `auth.conf` | the nats-server include that names them | `rustchain-nats-auth-conf` |
| `postgres.password` | the dev PostgreSQL password | `rustchain-postgres` |
| `database.url` | the URL of that database | `rustchain-database` |

What exists is kept (Tilt runs this on every `tilt up`, and a new PostgreSQL password or key would
lock a running deployment out of its own data); `--rotate` makes everything new. The derived files
(`admin.token` when it no longer verifies, `auth.conf`, `database.url`) are rewritten from what
they derive from, so they always agree with it.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import click

from rustchain.domain.credentials import Claims, CredentialError, Role
from rustchain.platform.nats_auth import SECRETS_FILE, CalloutSecrets, server_configuration
from rustchain.platform.nats_jwt import new_account_seed
from rustchain.platform.tokens import ADMIN_TOKEN_FILE, KEY_FILE, issue, verify

AUTH_CONF_FILE = "auth.conf"
POSTGRES_PASSWORD_FILE = "postgres.password"
DATABASE_URL_FILE = "database.url"
DEV_DATABASE = "postgresql://rustchain:{password}@postgres:5432/rustchain"
"""The dev overlay's in-cluster PostgreSQL (k8s/overlays/dev/postgres.yaml)."""


@dataclass(frozen=True)
class SecretMaterial:
    """What a deployment's Secrets hold, as written to the output folder."""

    jwt_key: str
    admin_token: str
    callout: CalloutSecrets
    auth_conf: str
    postgres_password: str
    database_url: str


def _write(path: Path, text: str) -> None:
    # Created 0600 before the secret is written, so it is never readable by others.
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)


def _kept(path: Path, rotate: bool) -> str | None:
    if rotate or not path.is_file():
        return None
    return path.read_text().strip() or None


def _admin_token(path: Path, key: str, rotate: bool) -> str:
    token = _kept(path, rotate)
    if token is not None:
        try:
            verify(key, token)
            return token
        except CredentialError:
            pass  # signed with an older key: issue a new one below
    return issue(key, Claims(sub="admin", role=Role.ADMIN))


def _callout(path: Path, rotate: bool) -> CalloutSecrets:
    text = _kept(path, rotate)
    if text is not None:
        stored = json.loads(text)
        return CalloutSecrets(stored["issuer_seed"], stored["password"])
    return CalloutSecrets(new_account_seed(), secrets.token_urlsafe(32))


def auth_include(callout: CalloutSecrets) -> str:
    """The nats-server include file: accounts, the auth user and the callout's issuer.

    JSON is valid NATS configuration syntax, the same block the embedded server is given.
    """
    return json.dumps(server_configuration(callout), indent=2, sort_keys=True) + "\n"


def write_secrets(
    out: Path, rotate: bool = False, database_url: str | None = None
) -> SecretMaterial:
    """Write (or keep) every secret file under `out`; `database_url` replaces the dev one."""
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)
    key = _kept(out / KEY_FILE, rotate) or secrets.token_urlsafe(48)
    token = _admin_token(out / ADMIN_TOKEN_FILE, key, rotate)
    callout = _callout(out / SECRETS_FILE, rotate)
    # token_hex: nothing in it needs quoting inside the database URL.
    password = _kept(out / POSTGRES_PASSWORD_FILE, rotate) or secrets.token_hex(24)
    url = database_url or DEV_DATABASE.format(password=password)
    material = SecretMaterial(key, token, callout, auth_include(callout), password, url)
    _write(out / KEY_FILE, material.jwt_key)
    _write(out / ADMIN_TOKEN_FILE, material.admin_token)
    document = {"issuer_seed": callout.issuer_seed, "password": callout.password}
    _write(out / SECRETS_FILE, json.dumps(document))
    _write(out / AUTH_CONF_FILE, material.auth_conf)
    _write(out / POSTGRES_PASSWORD_FILE, material.postgres_password)
    _write(out / DATABASE_URL_FILE, material.database_url)
    return material


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The folder to write to (the dev overlay reads k8s/overlays/dev/secrets).",
)
@click.option("--rotate", is_flag=True, help="Make every secret new instead of keeping them.")
@click.option(
    "--database-url",
    envvar="RUSTCHAIN_DATABASE_URL",
    help="The PostgreSQL URL to put in database.url (default: the dev overlay's database).",
)
def main(out: Path, rotate: bool, database_url: str | None) -> None:
    """Write the Secret material of a Kubernetes deployment of RustChain."""
    material = write_secrets(out, rotate, database_url)
    click.echo(f"secrets in {out.absolute()} (NATS callout issuer {material.callout.issuer})")


if __name__ == "__main__":
    main(prog_name=f"python -m {__spec__.name if __spec__ else 'rustchain.tools.k8s_secrets'}")
    os._exit(0)  # pragma: no cover
