"""What the data steps share: the tenant's grant for a named database or Redis server, checked
at run time, and the one address a connection to it may go to."""

from __future__ import annotations

from collections.abc import Sequence

from rustchain.domain.policy.checks import check_value
from rustchain.domain.policy.data import DatabaseGrant, RedisGrant, database_grant
from rustchain.domain.policy.data_rules import statement_text
from rustchain.domain.policy.network_addresses import AddressRules
from rustchain.domain.policy.patterns import glob
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.network_guard import TargetGuard
from rustchain.steps.support.runtime import StepContext, StepRunError

STATEMENTS_FIELD = "database (statements)"
"""How a finding names the statements a step runs when no one parameter holds them."""


def granted_database(context: StepContext, name: str) -> DatabaseGrant:
    """The tenant's grant of database `name`, or a refusal (none is granted by default)."""
    context.enforce(check_value, Sink.DATABASE, name)
    grant = database_grant(context.enforced_policy.databases, name)
    if grant is None:  # the rule above refuses it first; kept for the type checker
        raise StepRunError(f"database '{name}' is not granted")
    return grant


def check_statements(context: StepContext, grant: DatabaseGrant, kinds: Sequence[str]) -> None:
    """Refuse statement kinds the grant does not allow (`databases[].statements`)."""
    context.enforce(check_value, Sink.SQL_STATEMENT, statement_text(grant.name, list(kinds)))


def granted_redis(context: StepContext, name: str, key: str, *, write: bool) -> RedisGrant:
    """The tenant's grant of Redis server `name`, checked for the key and, to write, for writes."""
    context.enforce(check_value, Sink.REDIS_SERVER, name)
    context.enforce(check_value, Sink.REDIS_KEY, f"{name}/{key}")
    if write:
        context.enforce(check_value, Sink.REDIS_WRITE, name)
    grant = context.enforced_policy.redis.grant(name)
    if grant is None:  # the rule above refuses it first; kept for the type checker
        raise StepRunError(f"Redis server '{name}' is not granted")
    return grant


async def granted_address(context: StepContext, host: str, port: int) -> str:
    """The address to connect to for a granted host: resolved once, judged by the network
    policy's address rules, except that a grant whose host is written as an address (a database
    on loopback or a private network) may reach that address, the operator having named it."""
    network = context.enforced_policy.network
    denied = [d for d in network.denied_hosts if not glob(d, ignore_case=True).matches(host)]
    guard = TargetGuard(AddressRules.of(denied, [host]))
    addresses = await guard.addresses(host, port, context.timeout_seconds)
    return addresses[0]
