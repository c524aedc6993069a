"""The `redis_set` step: SET a key on a Redis server the tenant's policy grants for writing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation
from rustchain.steps.support import redis_connections
from rustchain.steps.support.data_services import granted_redis
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.redis_connections import RedisTarget, redis_uses
from rustchain.steps.support.runtime import StepContext, StepRunError

if TYPE_CHECKING:
    pass

MAX_VALUE_BYTES = 512 * 1024


class RedisSetParameters(RedisTarget):
    """The key, its value and, unlike RustChain, an optional expiry."""

    model_config = PARAMETERS
    value: str
    expire_seconds: Annotated[int, Field(ge=1)] | None = None


async def redis_set(params: RedisSetParameters, context: StepContext) -> dict[str, Any]:
    """`{"key", "value", "set": true}` once the server stored the value."""
    import redis.exceptions

    grant = granted_redis(context, params.server, params.key, write=True)
    data = params.value.encode("utf-8")
    if len(data) > MAX_VALUE_BYTES:
        raise StepRunError(f"value is larger than {MAX_VALUE_BYTES} bytes")
    client = await redis_connections.connect(context, grant, params.redis_url)
    try:
        async with client:
            await client.set(params.key, data, ex=params.expire_seconds)
    except redis.exceptions.RedisError as error:
        raise StepRunError(f"Redis server '{grant.name}' refused SET: {error}") from None
    return {"key": params.key, "value": params.value, "set": True}


STEP_TYPE = StepDefinition(
    "redis_set", "Set a key on a granted Redis server", RedisSetParameters, run=redis_set
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """A granted server that allows writes, and a key under one of its prefixes."""
    return redis_uses(dict(step.parameters), write=True)


CONSTRAINTS = constraints
