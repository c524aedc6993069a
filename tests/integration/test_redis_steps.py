"""redis_set and redis_get against the machine's Redis (127.0.0.1:6379), each test under a key
prefix of its own; every refusal is made by the runner itself (the verifier bypassed)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from rustchain.domain.policy.model import Policy
from rustchain.steps.support.runtime import PolicyRefusedError, StepRunError
from tests.integration.data_step_helpers import context_for, run_step

HOST, PORT = "127.0.0.1", 6379


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted afterwards."""
    client = redis.Redis(host=HOST, port=PORT, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"no Redis at {HOST}:{PORT}: {error}")
    prefix = f"rustchain-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def grants(prefix: str) -> Policy:
    return Policy.model_validate(
        {
            "redis": {
                "servers": [
                    {
                        "name": "default",
                        "host": HOST,
                        "port": PORT,
                        "key_prefixes": [prefix],
                        "write": True,
                    },
                    {"name": "readonly", "host": HOST, "port": PORT, "key_prefixes": [prefix]},
                ]
            }
        }
    )


def test_a_value_set_is_read_back(tmp_path: Path, prefix: str) -> None:
    context = context_for(tmp_path, grants(prefix))

    written = run_step("redis_set", context, key=f"{prefix}greeting", value="héllo")
    read = run_step("redis_get", context, key=f"{prefix}greeting", server="readonly")
    missing = run_step("redis_get", context, key=f"{prefix}nothing")

    assert written == {"key": f"{prefix}greeting", "value": "héllo", "set": True}
    assert read == {"key": f"{prefix}greeting", "value": "héllo", "exists": True}
    assert missing == {"key": f"{prefix}nothing", "value": None, "exists": False}


def test_expire_seconds_sets_a_time_to_live(tmp_path: Path, prefix: str) -> None:
    run_step(
        "redis_set",
        context_for(tmp_path, grants(prefix)),
        key=f"{prefix}t",
        value="v",
        expire_seconds=100,
    )

    ttl = redis.Redis(host=HOST, port=PORT).ttl(f"{prefix}t")
    assert 0 < ttl <= 100


def test_a_redis_url_with_the_granted_place_only_adds_credentials(
    tmp_path: Path, prefix: str
) -> None:
    out = run_step(
        "redis_set",
        context_for(tmp_path, grants(prefix)),
        key=f"{prefix}u",
        value="v",
        redis_url=f"redis://{HOST}:{PORT}/0",
    )
    assert out["set"] is True


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis://10.1.2.3:6379/0", "host '10.1.2.3'"),
        ("redis://127.0.0.1:6380/0", "port '6380'"),
        ("redis://127.0.0.1:6379/3", "db '3'"),
        ("redis://127.0.0.1:6379/0?ssl_certfile=/etc/shadow", "no options"),
    ],
)
def test_a_redis_url_may_not_lead_elsewhere(
    tmp_path: Path, prefix: str, url: str, reason: str
) -> None:
    with pytest.raises(PolicyRefusedError, match=reason):
        run_step(
            "redis_get", context_for(tmp_path, grants(prefix)), key=f"{prefix}k", redis_url=url
        )


def test_a_key_outside_the_prefixes_is_refused_at_run_time(tmp_path: Path, prefix: str) -> None:
    with pytest.raises(PolicyRefusedError, match=r"redis.key"):
        run_step("redis_get", context_for(tmp_path, grants(prefix)), key="other:secret")


def test_a_write_to_a_read_only_server_is_refused_at_run_time(tmp_path: Path, prefix: str) -> None:
    with pytest.raises(PolicyRefusedError, match=r"redis.write"):
        run_step(
            "redis_set",
            context_for(tmp_path, grants(prefix)),
            server="readonly",
            key=f"{prefix}k",
            value="v",
        )
    assert redis.Redis(host=HOST, port=PORT).get(f"{prefix}k") is None


def test_without_a_grant_no_server_is_reached(tmp_path: Path) -> None:
    with pytest.raises(PolicyRefusedError, match=r"redis.server"):
        run_step("redis_get", context_for(tmp_path, None), key="anything")


def test_a_granted_name_that_resolves_to_a_denied_address_is_refused(
    tmp_path: Path, prefix: str
) -> None:
    # `localhost` is a name, not the address the operator wrote: the network rules apply.
    policy = Policy.model_validate(
        {"redis": {"servers": [{"name": "default", "host": "localhost", "key_prefixes": [prefix]}]}}
    )
    with pytest.raises(PolicyRefusedError, match=r"network.address"):
        run_step("redis_get", context_for(tmp_path, policy), key=f"{prefix}k")


def test_a_key_of_another_type_reads_as_no_value(tmp_path: Path, prefix: str) -> None:
    redis.Redis(host=HOST, port=PORT).rpush(f"{prefix}list", "a")

    out = run_step("redis_get", context_for(tmp_path, grants(prefix)), key=f"{prefix}list")

    assert out == {"key": f"{prefix}list", "value": None, "exists": False}


def test_an_unreachable_server_is_a_step_error(tmp_path: Path, prefix: str) -> None:
    policy = Policy.model_validate(
        {
            "redis": {
                "servers": [{"name": "default", "host": HOST, "port": 1, "key_prefixes": [prefix]}]
            }
        }
    )
    with pytest.raises(StepRunError, match="refused GET"):
        run_step("redis_get", context_for(tmp_path, policy), key=f"{prefix}k")


def test_a_value_beyond_the_bound_is_refused_not_read(tmp_path: Path, prefix: str) -> None:
    redis.Redis(host=HOST, port=PORT).set(f"{prefix}big", b"x" * (600 * 1024))

    with pytest.raises(StepRunError, match="holds more than 524288 bytes"):
        run_step("redis_get", context_for(tmp_path, grants(prefix)), key=f"{prefix}big")
