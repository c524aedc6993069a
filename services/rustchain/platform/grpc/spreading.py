"""One channel over several replicas of a service: gRPC's own round-robin balancer spreads the
calls over the replicas that are connected, and its retry policy sends a call that found its
replica gone (UNAVAILABLE) to another one.

An endpoint is `host:port`, a list `ip:port,ip:port,...` (what `rustchain up --executors N`
writes), or a gRPC target such as `dns:///executor-replicas:50051` (a Kubernetes headless
Service: every address the name resolves to is a replica).
"""

from __future__ import annotations

import ipaddress
import json

REPLICA_SEPARATOR = ","
RETRIED_ATTEMPTS = 4
"""Attempts of a call whose replica is unreachable: enough to reach each of three others."""
_SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": RETRIED_ATTEMPTS,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)
ChannelOptions = list[tuple[str, str | int]]


class ReplicaListError(ValueError):
    """A list of replicas that gRPC cannot balance over; the message says what was expected."""


def replicas_of(endpoint: str) -> list[str]:
    """The replica endpoints a (possibly comma-separated) endpoint names."""
    return [part.strip() for part in endpoint.split(REPLICA_SEPARATOR) if part.strip()]


def _address(endpoint: str) -> tuple[str, str]:
    host, colon, port = endpoint.rpartition(":")
    bare = host.strip("[]")
    try:
        family = "ipv6" if ipaddress.ip_address(bare).version == 6 else "ipv4"
    except ValueError:
        raise ReplicaListError(
            f"a list of replicas must give each as IP:PORT (found {endpoint!r}); for a name"
            " that resolves to every replica use one dns:///NAME:PORT target"
        ) from None
    if not colon or not port.isdigit():
        raise ReplicaListError(f"a replica must be IP:PORT, found {endpoint!r}")
    return family, f"[{bare}]:{port}" if family == "ipv6" else f"{bare}:{port}"


def channel_target(endpoint: str) -> tuple[str, ChannelOptions]:
    """The gRPC target and channel options that reach every replica `endpoint` names."""
    replicas = replicas_of(endpoint)
    if len(replicas) == 1 and not replicas[0].startswith("dns:"):
        return replicas[0], []
    options: ChannelOptions = [("grpc.service_config", _SERVICE_CONFIG)]
    if len(replicas) == 1:
        return replicas[0], options
    addresses = [_address(replica) for replica in replicas]
    families = {family for family, _ in addresses}
    if len(families) > 1:
        raise ReplicaListError(f"the replicas {endpoint!r} mix IPv4 and IPv6 addresses")
    return f"{families.pop()}:" + REPLICA_SEPARATOR.join(a for _, a in addresses), options
