"""`python -m rustchain.tools.k8s_secrets --out DIR`: a Kubernetes deployment's Secret material.

It writes, one value per file (no trailing newline except in PEM files and the `.conf` files:
kustomize's secretGenerator takes a file's bytes as the value):

| file | what it is | Secret: mounted by |
|---|---|---|
| `token-signing.pem` | the key that signs tokens | none: the operator's, for `token create` |
| `token-signing.pub.pem` | its public key | `rustchain-token-public-key`: services, callout |
| `verdict-signing.pem` | the verifier's verdict key | `rustchain-verdict-signing-key`: verifier |
| `verdict-signing.pub.pem` | its public key | `rustchain-verdict-public-key`: executor |
| `checkpoint-signing.pem` | the checkpoint key | `rustchain-checkpoint-signing-key`: relays |
| `checkpoint-signing.pub.pem` | its public key | none: the auditors' (`audit verify`) |
| `admin.token` | the services' admin token | `rustchain-admin-token`: services, relays |
| `nats-auth.json` | the NATS callout's issuer seed, password | `rustchain-nats-callout`: callout |
| `auth.conf` | the nats-server include naming them | `rustchain-nats-auth-conf`: nats |
| `routes.conf` | the NATS cluster's routes, their password | `rustchain-nats-routes`: nats |
| `postgres.password` | the dev PostgreSQL password | `rustchain-postgres`: postgres (dev) |
| `database.url` | the URL of that database | `rustchain-database`: verifier, executor, relays |

What exists is kept (Tilt runs this on every `tilt up`, and a new PostgreSQL password or key would
lock a running deployment out of its own data); `--rotate` makes everything new. The derived files
are rewritten from what they derive from, so they always agree with it: the public keys,
`auth.conf`, `routes.conf` (its password is kept), `database.url`, and `admin.token` when it no
longer verifies or has less than ADMIN_RENEW_WITHIN_SECONDS left (it lives
ADMIN_TOKEN_LIFETIME_SECONDS: running the tool again before then renews it, `--rotate` replaces it
at once).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rustchain.domain.access.credentials import Claims, CredentialError, Role
from rustchain.platform.credentials.signing_keys import (
    CHECKPOINT_KEYS,
    LEGACY_KEY_FILE,
    TOKEN_KEYS,
    VERDICT_KEYS,
    KeyPair,
    parse_private_key,
    private_pem,
    public_pem,
)
from rustchain.platform.credentials.tokens import ADMIN_TOKEN_FILE, DAY, issue, verify
from rustchain.platform.nats.auth_callout import SECRETS_FILE, CalloutSecrets, server_configuration
from rustchain.platform.nats.cluster import new_route_password, routes_include
from rustchain.platform.nats.jwt import new_account_seed

AUTH_CONF_FILE = "auth.conf"
ROUTES_CONF_FILE = "routes.conf"
PRODUCTION_NATS_HOSTS = tuple(f"nats-{index}.nats-headless" for index in range(3))
"""The production overlay's NATS servers (nats-cluster.yaml), each by its stable name."""
POSTGRES_PASSWORD_FILE = "postgres.password"
DATABASE_URL_FILE = "database.url"
DEV_DATABASE = "postgresql://rustchain:{password}@postgres:5432/rustchain"
"""The dev overlay's in-cluster PostgreSQL (k8s/overlays/dev/postgres.yaml)."""
ADMIN_TOKEN_LIFETIME_SECONDS = 365 * DAY
"""Long: it lives in a Secret only the services' pods mount, and a renewal means a restart."""
ADMIN_RENEW_WITHIN_SECONDS = 30 * DAY


def private_file_name(pair: KeyPair) -> str:
    """The file (and Secret key) of a pair's private half."""
    return f"{pair.name}.pem"


def public_file_name(pair: KeyPair) -> str:
    """The file of a pair's public half."""
    return f"{pair.name}.pub.pem"


@dataclass(frozen=True)
class SecretMaterial:
    """What a deployment's Secrets hold, as written to the output folder."""

    token_key: str
    token_public_key: str
    verdict_key: str
    verdict_public_key: str
    checkpoint_key: str
    checkpoint_public_key: str
    admin_token: str
    callout: CalloutSecrets
    auth_conf: str
    routes_conf: str
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


def _key(path: Path, rotate: bool) -> Ed25519PrivateKey:
    text = _kept(path, rotate)
    return parse_private_key(text, str(path)) if text else Ed25519PrivateKey.generate()


def _admin_token(path: Path, key: Ed25519PrivateKey, rotate: bool) -> str:
    token = _kept(path, rotate)
    if token is not None:
        try:
            claims = verify(key.public_key(), token)
        except CredentialError:
            pass  # signed with an older key: issue a new one below
        else:
            if claims.exp is not None and claims.exp - time.time() > ADMIN_RENEW_WITHIN_SECONDS:
                return token
    claims = Claims(sub="service:kubernetes", role=Role.ADMIN)
    return issue(key, claims, expires_in=ADMIN_TOKEN_LIFETIME_SECONDS)


def _callout(path: Path, rotate: bool) -> CalloutSecrets:
    text = _kept(path, rotate)
    if text is not None:
        stored = json.loads(text)
        return CalloutSecrets(stored["issuer_seed"], stored["password"])
    return CalloutSecrets(new_account_seed(), secrets.token_urlsafe(32))


def _route_password(path: Path, rotate: bool) -> str:
    text = _kept(path, rotate)
    if text is not None:
        password = json.loads(text)["cluster"]["authorization"]["password"]
        if isinstance(password, str) and password:
            return password
    return new_route_password()


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
    # The shared HS256 key of earlier versions signs nothing any more: it is not kept around.
    (out / LEGACY_KEY_FILE).unlink(missing_ok=True)
    token_key = _key(out / private_file_name(TOKEN_KEYS), rotate)
    verdict_key = _key(out / private_file_name(VERDICT_KEYS), rotate)
    checkpoint_key = _key(out / private_file_name(CHECKPOINT_KEYS), rotate)
    token = _admin_token(out / ADMIN_TOKEN_FILE, token_key, rotate)
    callout = _callout(out / SECRETS_FILE, rotate)
    # token_hex: nothing in it needs quoting inside the database URL.
    password = _kept(out / POSTGRES_PASSWORD_FILE, rotate) or secrets.token_hex(24)
    url = database_url or DEV_DATABASE.format(password=password)
    material = SecretMaterial(
        private_pem(token_key),
        public_pem(token_key.public_key()),
        private_pem(verdict_key),
        public_pem(verdict_key.public_key()),
        private_pem(checkpoint_key),
        public_pem(checkpoint_key.public_key()),
        token,
        callout,
        auth_include(callout),
        routes_include(_route_password(out / ROUTES_CONF_FILE, rotate), PRODUCTION_NATS_HOSTS),
        password,
        url,
    )
    _write(out / private_file_name(TOKEN_KEYS), material.token_key)
    _write(out / public_file_name(TOKEN_KEYS), material.token_public_key)
    _write(out / private_file_name(VERDICT_KEYS), material.verdict_key)
    _write(out / public_file_name(VERDICT_KEYS), material.verdict_public_key)
    _write(out / private_file_name(CHECKPOINT_KEYS), material.checkpoint_key)
    _write(out / public_file_name(CHECKPOINT_KEYS), material.checkpoint_public_key)
    _write(out / ADMIN_TOKEN_FILE, material.admin_token)
    document = {"issuer_seed": callout.issuer_seed, "password": callout.password}
    _write(out / SECRETS_FILE, json.dumps(document))
    _write(out / AUTH_CONF_FILE, material.auth_conf)
    _write(out / ROUTES_CONF_FILE, material.routes_conf)
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
