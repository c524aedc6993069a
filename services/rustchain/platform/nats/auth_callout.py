"""Per-tenant NATS access: the server asks this service (NATS auth callout) about every connection.

A client connects with its RustChain token as the NATS auth token. The server hands the connection
to this service, which verifies the token with the deployment's public token key (it holds no key
that could sign one) and answers with a NATS user whose permissions are those of the token's claims
(domain/access/nats_permissions.py): a tenant reads its own stream only, an auditor the tenants
it names, the admin (the services) everything. A missing, forged or expired token is refused,
and a connection ends when its token expires.

The callout answers are signed with an account nkey the server trusts (the issuer); the service
itself connects as a user of a separate account, with a password, both kept in
`$RUSTCHAIN_HOME/nats-auth.json` (mode 0600).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nats.aio.msg import Msg

from rustchain.domain.access.credentials import CredentialError
from rustchain.domain.access.nats_permissions import subject_permissions
from rustchain.platform.credentials.tokens import verify
from rustchain.platform.nats.jetstream import server_urls
from rustchain.platform.nats.jwt import (
    NatsJwtError,
    authorization_response,
    decode_unverified,
    encode,
    new_account_seed,
    public_key,
    user_claims,
)
from rustchain.platform.storage.private_files import write_private

SECRETS_FILE = "nats-auth.json"
AUTH_USER = "rustchain-auth"
AUTH_ACCOUNT = "AUTH"
APPLICATION_ACCOUNT = "RUSTCHAIN"
SYSTEM_ACCOUNT = "SYS"
AUTH_SUBJECT = "$SYS.REQ.USER.AUTH"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalloutSecrets:
    """The issuer seed that signs callout answers, and the callout service's own password."""

    issuer_seed: str
    password: str

    @property
    def issuer(self) -> str:
        """The issuer's public key, which the server configuration names."""
        return public_key(self.issuer_seed)


def callout_secrets(home: Path, create: bool = False) -> CalloutSecrets | None:
    """The deployment's callout secrets; with `create`, new ones are written when there are none."""
    path = home / SECRETS_FILE
    if path.is_file():
        stored = json.loads(path.read_text())
        return CalloutSecrets(stored["issuer_seed"], stored["password"])
    if not create:
        return None
    made = CalloutSecrets(new_account_seed(), secrets.token_urlsafe(32))
    write_private(path, json.dumps({"issuer_seed": made.issuer_seed, "password": made.password}))
    return made


def server_configuration(callout: CalloutSecrets) -> dict[str, Any]:
    """The accounts and `auth_callout` block of a nats-server configuration using this service."""
    return {
        "accounts": {
            AUTH_ACCOUNT: {"users": [{"user": AUTH_USER, "password": callout.password}]},
            APPLICATION_ACCOUNT: {"jetstream": "enabled"},
            SYSTEM_ACCOUNT: {},
        },
        "system_account": SYSTEM_ACCOUNT,
        "authorization": {
            "auth_callout": {
                "issuer": callout.issuer,
                "auth_users": [AUTH_USER],
                "account": AUTH_ACCOUNT,
            }
        },
    }


def authorize_connection(request: str, issuer_seed: str, key: Ed25519PublicKey, now: int) -> str:
    """The signed answer to one authorization request (a JWT the server signed and sent)."""
    claims = decode_unverified(request)["nats"]
    user_nkey = str(claims["user_nkey"])
    server_id = str(claims["server_id"]["id"])
    token = (claims.get("connect_opts") or {}).get("auth_token")
    user_jwt: str | None = None
    error: str | None = None
    if not token:
        error = "a RustChain token is required (the NATS auth token)"
    else:
        try:
            credential = verify(key, str(token))
        except CredentialError as refused:
            error = str(refused)
        else:
            user = user_claims(
                user_nkey,
                name=f"{credential.role.value}:{credential.sub}",
                account=APPLICATION_ACCOUNT,
                permissions=subject_permissions(credential),
                issued_at=now,
                expires_at=credential.exp,
            )
            user_jwt = encode(user, issuer_seed)
    answer = authorization_response(user_nkey, server_id, now, user_jwt, error)
    return encode(answer, issuer_seed)


async def serve_callout(
    url: str,
    callout: CalloutSecrets,
    key: Ed25519PublicKey,
    stop: asyncio.Event,
    ready: asyncio.Event | None = None,
) -> None:
    """Answer the server's authorization requests until `stop` is set, through NATS restarts;
    `ready` is set once the server routes requests here."""

    async def answer(message: Msg) -> None:
        try:
            reply = authorize_connection(
                message.data.decode(), callout.issuer_seed, key, int(time.time())
            )
        except (NatsJwtError, KeyError, TypeError, UnicodeDecodeError) as error:
            # Without an answer the server refuses the connection when its callout times out.
            _log.error("nats-auth: unreadable authorization request: %s", error)
            return
        await message.respond(reply.encode())

    async def report(error: Exception) -> None:
        _log.warning("nats-auth: %s", error)

    # Connected to any server of a cluster, it answers for all: their requests reach it over routes.
    client = await nats.connect(
        server_urls(url),
        user=AUTH_USER,
        password=callout.password,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
        error_cb=report,
    )
    try:
        await client.subscribe(AUTH_SUBJECT, cb=answer)
        await client.flush()
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        await client.close()
