"""A JetStream cluster on one machine: N nats-server processes routed to each other.

`rustchain up --nats-cluster 3` runs one; each member has its own name, ports and JetStream
files, and the routes between them present a password made for the cluster (a server without it
is refused: it would see every tenant's events). Each stream is kept on RUSTCHAIN_NATS_REPLICAS of
them (the deployment sets it to the cluster's size). Clients are given every member's URL, so they
reach the survivors when one member dies; JetStream keeps accepting events while a majority runs.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import replace

from rustchain.platform.nats.server import (
    ClusterRoutes,
    NatsServer,
    NatsServerError,
    NatsServerSettings,
    cluster_block,
    free_port,
)

CLUSTER_NAME = "rustchain"
ROUTE_USER = "route"
ROUTE_PORT = 6222
"""The route port of a server of the production cluster (nats-cluster.yaml)."""
CLUSTER_SIZES = (1, 3, 5)
"""A JetStream cluster needs a majority of its members to accept writes: odd sizes only."""


def route_urls(password: str, servers: Sequence[tuple[str, int]]) -> tuple[str, ...]:
    """The route URL of each (host, route port), with the cluster's credentials."""
    return tuple(f"nats-route://{ROUTE_USER}:{password}@{host}:{port}" for host, port in servers)


def routes_include(password: str, hosts: Sequence[str], port: int = ROUTE_PORT) -> str:
    """A nats-server include with the `cluster` block of a cluster whose members are `hosts`
    (the production StatefulSet's pods): it holds the routes' password, so it is a Secret.
    JSON is valid NATS configuration syntax."""
    routes = ClusterRoutes(
        CLUSTER_NAME, port, route_urls(password, [(h, port) for h in hosts]), ROUTE_USER, password
    )
    return json.dumps({"cluster": cluster_block(routes, f"0.0.0.0:{port}")}, indent=2) + "\n"


def new_route_password() -> str:
    """A fresh password for a cluster's routes (URL-safe: it goes inside the route URLs)."""
    return secrets.token_urlsafe(32)


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
        # The routes' credentials live as long as this cluster object (restarts keep them); each
        # member's configuration file, which holds them, is private to the deployment's user.
        password = new_route_password()
        routes = route_urls(password, [(settings.host, port) for port in route_ports])
        self.members = [
            NatsServer(
                replace(
                    settings,
                    store_dir=settings.store_dir / f"node-{index}",
                    server_name=f"{CLUSTER_NAME}-{index}",
                    cluster=ClusterRoutes(
                        CLUSTER_NAME, route_ports[index], routes, ROUTE_USER, password
                    ),
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
