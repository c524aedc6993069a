"""A JetStream cluster on one machine: N nats-server processes routed to each other.

`rustchain up --nats-cluster 3` runs one; each member has its own name, ports and JetStream
files, and each stream is kept on RUSTCHAIN_NATS_REPLICAS of them (the deployment sets it to the
cluster's size). Clients are given every member's URL, so they
reach the survivors when one member dies; JetStream keeps accepting events while a majority runs.
"""

from __future__ import annotations

from dataclasses import replace

from rustchain.platform.nats.server import (
    ClusterRoutes,
    NatsServer,
    NatsServerError,
    NatsServerSettings,
    free_port,
)

CLUSTER_NAME = "rustchain"
CLUSTER_SIZES = (1, 3, 5)
"""A JetStream cluster needs a majority of its members to accept writes: odd sizes only."""


class ClusterSizeError(ValueError):
    """A cluster size JetStream cannot keep a quorum with."""


def check_cluster_size(size: int) -> int:
    """The size, if a JetStream cluster can run with it; else ClusterSizeError saying why."""
    if size not in CLUSTER_SIZES:
        raise ClusterSizeError(
            f"a NATS cluster must have 1, 3 or 5 servers, found {size}: JetStream needs a"
            " majority of its servers to accept events, so an even count adds no safety"
        )
    return size


class NatsCluster:
    """The members of a JetStream cluster under one folder; each keeps its ports across restarts."""

    def __init__(self, settings: NatsServerSettings, size: int) -> None:
        check_cluster_size(size)
        route_ports = [free_port(settings.host) for _ in range(size)]
        routes = tuple(f"nats-route://{settings.host}:{port}" for port in route_ports)
        self.members = [
            NatsServer(
                replace(
                    settings,
                    store_dir=settings.store_dir / f"node-{index}",
                    server_name=f"{CLUSTER_NAME}-{index}",
                    cluster=ClusterRoutes(CLUSTER_NAME, route_ports[index], routes),
                )
            )
            for index in range(size)
        ]

    @property
    def url(self) -> str:
        """Every member's client URL, comma-separated (the form NATS_URL takes for a cluster)."""
        return ",".join(member.url for member in self.members)

    @property
    def size(self) -> int:
        """How many servers the cluster has."""
        return len(self.members)

    def start(self) -> None:
        """Start every member, then wait until each reports healthy (its JetStream has a leader)."""
        try:
            for member in self.members:
                member.launch()
            for member in self.members:
                member.wait_healthy()
        except NatsServerError:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every member."""
        for member in reversed(self.members):
            member.stop()
