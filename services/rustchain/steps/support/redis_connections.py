"""Connections to a granted Redis server: the credentials may come from the step's `redis_url`
(a `{secrets.NAME}` reference), the place from the tenant's grant, and the connection goes to
the one address that was checked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, Field

from rustchain.domain.policy.data import RedisGrant
from rustchain.domain.policy.obligations import Obligation, Use
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.data_services import granted_address
from rustchain.steps.support.errors import PolicyRefusedError
from rustchain.steps.support.runtime import StepContext, StepRunError

if TYPE_CHECKING:
    import redis.asyncio as redis

DEFAULT_SERVER = "default"


class RedisTarget(BaseModel):
    """The parameters both Redis steps take to say where: a granted server by name, and
    optionally RustChain's `redis_url`, which may only add credentials to that server."""

    server: Annotated[str, Field(min_length=1)] = DEFAULT_SERVER
    redis_url: Annotated[str, Field(min_length=1)] | None = None
    key: Annotated[str, Field(min_length=1, max_length=4096)]


@dataclass(frozen=True)
class Credentials:
    """Who connects, from the URL; None where it gave none."""

    username: str | None
    password: str | None


def credentials(grant: RedisGrant, url: str | None) -> Credentials:
    """The credentials of a `redis_url`, which may only name the granted host, port and db."""
    if url is None:
        return Credentials(None, None)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise StepRunError(f"redis_url is not a URL: {error}") from None
    if parts.scheme != "redis":
        raise StepRunError(f"redis_url must be a redis:// URL, found scheme '{parts.scheme}'")
    if parts.query or parts.fragment:
        raise PolicyRefusedError("[redis.connection] redis_url may carry no options")
    db = parts.path.strip("/")
    given = {
        "host": parts.hostname,
        "port": None if port is None else str(port),
        "db": db or None,
    }
    expected = {"host": grant.host.lower(), "port": str(grant.port), "db": str(grant.db)}
    for name, value in given.items():
        if value is not None and value != expected[name]:
            raise PolicyRefusedError(
                f"[redis.connection] redis_url names {name} '{value}', but Redis server "
                f"'{grant.name}' is granted at {name} '{expected[name]}'; the tenant's policy "
                "refuses it"
            )
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return Credentials(username, password)


async def connect(context: StepContext, grant: RedisGrant, url: str | None) -> redis.Redis:
    """A client for the granted server (its one connection opens on the first command)."""
    import redis.asyncio as redis

    who = credentials(grant, url)
    address = await granted_address(context, grant.host, grant.port)
    return redis.Redis(
        host=address,
        port=grant.port,
        db=grant.db,
        username=who.username,
        password=who.password,
        socket_timeout=context.timeout_seconds,
        socket_connect_timeout=context.timeout_seconds,
        decode_responses=False,
        # No CLIENT SETINFO round trips on each new connection (one per step).
        driver_info=None,
    )


def redis_uses(parameters: dict[str, Any], *, write: bool) -> list[Obligation]:
    """The server must be granted, the key under one of its prefixes, and a write allowed."""
    server = parameters.get("server", DEFAULT_SERVER)
    key = parameters.get("key")
    if not isinstance(server, str):
        return []
    uses: list[Obligation] = [Use(Sink.REDIS_SERVER, "server", server)]
    if isinstance(key, str):
        uses.append(Use(Sink.REDIS_KEY, "key", f"{server}/{key}"))
    if write:
        uses.append(Use(Sink.REDIS_WRITE, "value", server))
    return uses
