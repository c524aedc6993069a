"""The data-service sections of a policy as rules over the texts steps hand them.

A step names a database or Redis server by its grant's name; a statement is judged as
`DATABASE/KIND`, a Redis key as `SERVER/KEY` (grant names hold no '/'), so one regular language
per rule decides, for every value a template may take, whether the grant allows it.
"""

from __future__ import annotations

from rustchain.domain.policy.data import STATEMENT_KINDS, DatabaseGrant
from rustchain.domain.policy.languages import Rule
from rustchain.domain.policy.model import Policy
from rustchain.domain.policy.patterns import any_glob
from rustchain.domain.policy.regex import (
    ANYTHING,
    EMPTY,
    Lang,
    complement,
    concat,
    literal,
    star,
    union,
)

ANY_KIND = "any"
"""The kind of a query built from references: unknown before the run, so any kind."""


def statement_text(database: str, kinds: list[str]) -> str:
    """What a `databases.statement` rule judges: `DATABASE/KIND+KIND…`."""
    return f"{database}/{'+'.join(kinds)}"


def _allowed_statements(grant: DatabaseGrant) -> Lang:
    kinds: list[str] = list(grant.statements)
    if set(kinds) >= set(STATEMENT_KINDS):
        kinds.append(ANY_KIND)
    kind = union(EMPTY, *(literal(k) for k in kinds))
    return concat(literal(f"{grant.name}/"), kind, star(concat(literal("+"), kind)))


def data_rules(policy: Policy) -> dict[str, tuple[Rule, ...]]:
    """The rules of the `databases`, `redis` and `embeddings` sections, per sink (by its value:
    `policy_rules` owns the `Sink` enum and imports this module)."""
    databases = policy.databases
    statements = union(EMPTY, *(_allowed_statements(g) for g in databases))
    servers = policy.redis.servers
    keys = union(
        EMPTY,
        *(
            concat(literal(f"{g.name}/"), union(EMPTY, *(literal(p) for p in g.key_prefixes)))
            for g in servers
        ),
    )
    return {
        "database": (
            Rule(
                "databases.name",
                complement(union(EMPTY, *(literal(g.name) for g in databases))),
                "may use a database the policy does not grant (databases)",
            ),
        ),
        "sql_statement": (
            Rule(
                "databases.statement",
                complement(statements),
                "may run a kind of statement the database's grant does not allow "
                "(databases[].statements; a query built from references may be any kind)",
            ),
        ),
        "redis_server": (
            Rule(
                "redis.server",
                complement(union(EMPTY, *(literal(g.name) for g in servers))),
                "may use a Redis server the policy does not grant (redis.servers)",
            ),
        ),
        "redis_key": (
            Rule(
                "redis.key",
                complement(concat(keys, ANYTHING)),
                "may touch a key outside the server's key_prefixes (redis.servers[].key_prefixes)",
            ),
        ),
        "redis_write": (
            Rule(
                "redis.write",
                complement(union(EMPTY, *(literal(g.name) for g in servers if g.write))),
                "may write to a Redis server the policy grants only for reading "
                "(redis.servers[].write)",
            ),
        ),
        "embedding_model": (
            Rule(
                "embeddings.model",
                complement(any_glob(policy.embeddings.allowed_models)),
                "may ask an embedding model the policy does not allow (embeddings.allowed_models)",
            ),
        ),
    }
