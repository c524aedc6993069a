"""The `redis_get` step: GET a key from a Redis server the tenant's policy grants."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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


class RedisGetParameters(RedisTarget):
    """The key to read."""

    model_config = PARAMETERS


async def redis_get(params: RedisGetParameters, context: StepContext) -> dict[str, Any]:
    """`{"key", "value", "exists"}`: the value as text, or null for a missing key (or, as in
    RustChain, a key holding another type than a string)."""
    import redis.exceptions

    grant = granted_redis(context, params.server, params.key, write=False)
    client = await redis_connections.connect(context, grant, params.redis_url)
    try:
        async with client, client.pipeline(transaction=False) as pipeline:
            # One round trip, and never more than the bound transferred: the type, the length
            # and the first MAX_VALUE_BYTES bytes (GETRANGE fails on a key of another type).
            pipeline.type(params.key)
            pipeline.strlen(params.key)
            pipeline.getrange(params.key, 0, MAX_VALUE_BYTES)
            kind, size, data = await pipeline.execute(raise_on_error=False)
    except redis.exceptions.RedisError as error:
        raise StepRunError(f"Redis server '{grant.name}' refused GET: {error}") from None
    if isinstance(kind, Exception):
        raise StepRunError(f"Redis server '{grant.name}' refused GET: {kind}")
    if kind != b"string" or isinstance(data, Exception):
        data = None  # missing, or another type: no value, as in RustChain
    elif isinstance(size, int) and size > MAX_VALUE_BYTES:
        raise StepRunError(f"key '{params.key}' holds more than {MAX_VALUE_BYTES} bytes")
    value = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else None
    return {"key": params.key, "value": value, "exists": value is not None}


STEP_TYPE = StepDefinition(
    "redis_get", "Get a key from a granted Redis server", RedisGetParameters, run=redis_get
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """A granted server, and a key under one of its prefixes."""
    return redis_uses(dict(step.parameters), write=False)


CONSTRAINTS = constraints
