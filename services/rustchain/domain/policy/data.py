"""Policy sections for data services: the databases, Redis servers and embedding models a
tenant's missions may use. Each is denied unless granted: the default policy grants none.

A grant names where the service is (host, port, database or file) but never holds a credential:
a step gets its password from a `{secrets.NAME}` reference, and the runtime refuses a connection
text that points anywhere but the granted place.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_SECTION = ConfigDict(strict=True, extra="forbid", frozen=True, defer_build=True)
# A grant's name is what a step's `database` or `server` names; no '/' so `name/…` texts split.
GrantName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Glob = Annotated[str, Field(min_length=1)]
Port = Annotated[int, Field(ge=1, le=65535)]

StatementKind = Literal["read", "write", "schema", "other"]
"""What a SQL statement does: `read` (a query without side effects), `write` (INSERT, UPDATE,
DELETE, MERGE, TRUNCATE, or a query holding one), `schema` (CREATE, ALTER, DROP, SELECT INTO) and
`other` (PRAGMA, ATTACH, COPY, SET, GRANT, anything not understood)."""

STATEMENT_KINDS: tuple[StatementKind, ...] = ("read", "write", "schema", "other")


def _read_only() -> list[StatementKind]:
    return ["read"]


class DatabaseGrant(BaseModel):
    """One database a tenant may use, by name, and the statement kinds it may run there."""

    model_config = _SECTION
    name: GrantName
    engine: Literal["sqlite", "postgresql"]
    # sqlite: the database file, relative to the mission's workspace.
    path: Annotated[str, Field(min_length=1)] | None = None
    # postgresql: the server and database a step's connection text must name.
    host: Annotated[str, Field(min_length=1)] | None = None
    port: Port = 5432
    database: Annotated[str, Field(min_length=1)] | None = None
    statements: list[StatementKind] = Field(default_factory=_read_only)

    @model_validator(mode="after")
    def _where(self) -> DatabaseGrant:
        if self.engine == "sqlite" and self.path is None:
            raise ValueError(f"database '{self.name}' is sqlite: give its 'path' in the workspace")
        if self.engine == "postgresql" and (self.host is None or self.database is None):
            raise ValueError(
                f"database '{self.name}' is postgresql: give its 'host' and 'database'"
            )
        return self


class RedisGrant(BaseModel):
    """One Redis server (and logical database) a tenant may use, and the keys it may touch."""

    model_config = _SECTION
    name: GrantName
    host: Annotated[str, Field(min_length=1)]
    port: Port = 6379
    db: Annotated[int, Field(ge=0, le=15)] = 0
    # Keys the tenant may read or write start with one of these; none: no key at all.
    key_prefixes: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    write: bool = False


class RedisPolicy(BaseModel):
    """Which Redis servers `redis_get` and `redis_set` steps may use."""

    model_config = _SECTION
    servers: list[RedisGrant] = Field(default_factory=list)

    def grant(self, name: str) -> RedisGrant | None:
        """The grant of that name, if any."""
        return next((g for g in self.servers if g.name == name), None)


class EmbeddingsPolicy(BaseModel):
    """Where embeddings come from (an OpenAI-compatible or Ollama endpoint the operator runs)
    and which of its models missions may ask."""

    model_config = _SECTION
    provider: Literal["openai", "ollama"] = "openai"
    # The endpoint's base URL (`…/v1` for OpenAI-compatible servers); none: no embeddings.
    endpoint: Annotated[str, Field(min_length=1, pattern=r"^https?://")] | None = None
    allowed_models: list[Glob] = Field(default_factory=list)
    # The longest text a step may embed, in characters.
    max_text_chars: Annotated[int, Field(ge=1)] = 32_000


def database_grant(databases: list[DatabaseGrant], name: str) -> DatabaseGrant | None:
    """The database grant of that name, if any."""
    return next((g for g in databases if g.name == name), None)
