"""Several executor replicas: how they are named, listed and reached through one channel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rustchain.platform.deployment.endpoints import Endpoints, EndpointsError, configured_endpoints
from rustchain.platform.deployment.replicas import (
    EXECUTOR_ID_VARIABLE,
    ReplicaCountError,
    check_executor_count,
    executor_replicas,
)
from rustchain.platform.grpc.spreading import ReplicaListError, channel_target

NOWHERE = Path("/nonexistent-rustchain-home")


def test_one_endpoint_is_a_plain_channel_without_balancing() -> None:
    assert channel_target("executor:50051") == ("executor:50051", [])


def test_a_list_of_replicas_is_one_round_robin_target_that_retries_unavailable_calls() -> None:
    target, options = channel_target("127.0.0.1:1001, 127.0.0.1:1002,127.0.0.1:1003")
    assert target == "ipv4:127.0.0.1:1001,127.0.0.1:1002,127.0.0.1:1003"
    config = json.loads(dict(options)["grpc.service_config"])  # type: ignore[arg-type]
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert config["methodConfig"][0]["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]


def test_a_dns_target_is_balanced_over_every_address_it_resolves_to() -> None:
    target, options = channel_target("dns:///executor-replicas:50051")
    assert target == "dns:///executor-replicas:50051"
    assert "round_robin" in str(dict(options)["grpc.service_config"])


def test_ipv6_replicas_are_bracketed() -> None:
    assert channel_target("[::1]:1,[::1]:2")[0] == "ipv6:[::1]:1,[::1]:2"


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("executor-1:1,executor-2:2", "IP:PORT (found 'executor-1:1')"),
        ("127.0.0.1:1,127.0.0.1:x", "a replica must be IP:PORT, found '127.0.0.1:x'"),
        ("127.0.0.1:1,[::1]:2", "mix IPv4 and IPv6"),
    ],
)
def test_a_list_grpc_cannot_balance_over_is_refused_in_one_line(
    endpoint: str, message: str
) -> None:
    with pytest.raises(ReplicaListError, match=r"^[^\n]+$") as raised:
        channel_target(endpoint)
    assert message in str(raised.value)


def test_the_endpoints_file_lists_every_replica_and_keeps_the_first_as_the_service() -> None:
    endpoints = Endpoints(
        {"executor": "127.0.0.1:1", "planner": "127.0.0.1:9"},
        replicas={"executor": ["127.0.0.1:1", "127.0.0.1:2"]},
    )
    document = json.loads(endpoints.to_json())
    assert document["services"]["executor"] == "127.0.0.1:1"
    assert document["replicas"] == {"executor": ["127.0.0.1:1", "127.0.0.1:2"]}
    assert endpoints.target("executor") == "127.0.0.1:1,127.0.0.1:2"
    assert endpoints.target("planner") == "127.0.0.1:9"


def test_one_executor_writes_the_file_as_before() -> None:
    assert "replicas" not in json.loads(Endpoints({"executor": "127.0.0.1:1"}).to_json())


def test_a_service_named_again_in_rustchain_endpoint_is_another_replica() -> None:
    named = "planner=127.0.0.1:9,executor=127.0.0.1:1,executor=127.0.0.1:2"
    endpoints = configured_endpoints(NOWHERE, {"RUSTCHAIN_ENDPOINT": named})
    assert endpoints is not None
    assert endpoints.services == {"planner": "127.0.0.1:9", "executor": "127.0.0.1:1"}
    assert endpoints.target("executor") == "127.0.0.1:1,127.0.0.1:2"
    with pytest.raises(EndpointsError, match="another replica"):
        configured_endpoints(NOWHERE, {"RUSTCHAIN_ENDPOINT": "planner=127.0.0.1:9,oops"})


def test_several_executors_need_postgresql_and_say_why() -> None:
    check_executor_count(1, {})
    check_executor_count(3, {"RUSTCHAIN_DATABASE_URL": "postgresql://db/x"})
    with pytest.raises(ReplicaCountError) as raised:
        check_executor_count(2, {})
    message = str(raised.value)
    assert "\n" not in message
    assert "one executor drives it" in message
    assert "set RUSTCHAIN_DATABASE_URL" in message
    with pytest.raises(ReplicaCountError, match="at least 1"):
        check_executor_count(0, {})


def test_each_replica_has_a_stable_lease_owner_id_and_one_alone_keeps_its_name() -> None:
    three = executor_replicas(["a:1", "a:2", "a:3"])
    assert [r.name for r in three] == ["executor-1", "executor-2", "executor-3"]
    assert [r.environ() for r in three][2] == {EXECUTOR_ID_VARIABLE: "executor-3"}
    (alone,) = executor_replicas(["a:1"])
    assert (alone.name, alone.replica_id) == ("executor", "executor-1")
