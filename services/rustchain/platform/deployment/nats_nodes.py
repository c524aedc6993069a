"""The embedded deployment's NATS: one nats-server, or a JetStream cluster of 3 or 5.

Either way the supervisor sees a list of servers: each one that dies is reported and started again
on its ports and files (a cluster member rejoins and catches up its streams from the others).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from rustchain.platform.nats.cluster import NatsCluster, check_cluster_size
from rustchain.platform.nats.jetstream import REPLICAS_VARIABLE
from rustchain.platform.nats.server import NatsServer, NatsServerSettings


class NatsNodes:
    """The servers of a deployment, started together, restarted one by one."""

    def __init__(self, settings: NatsServerSettings, size: int = 1) -> None:
        check_cluster_size(size)
        self._cluster = NatsCluster(settings, size) if size > 1 else None
        self.members = self._cluster.members if self._cluster else [NatsServer(settings)]

    @property
    def url(self) -> str:
        """The NATS_URL of the deployment: every server's URL, comma-separated."""
        return ",".join(member.url for member in self.members)

    def environ(self) -> dict[str, str]:
        """What each child is told: the URL, and for a cluster, a stream on every server."""
        settings = {"NATS_URL": self.url}
        if len(self.members) > 1:
            settings[REPLICAS_VARIABLE] = str(len(self.members))
        return settings

    def start(self) -> None:
        """Start every server and wait until each is healthy."""
        if self._cluster is not None:
            self._cluster.start()
        else:
            self.members[0].start()

    def restart_dead(self, report: Callable[[str], None]) -> None:
        """Report and start again each server whose process has ended."""
        for member in self.members:
            if member.pid is not None and _reaped(member.pid):
                name = "nats-server"
                if self._cluster is not None:
                    name += f" {member.settings.server_name}"
                report(f"{name} (pid {member.pid}) died; restarting it")
                member.stop()
                member.start()
                report(f"{name} restarted (pid {member.pid})")

    def stop(self) -> None:
        """Stop every server."""
        for member in reversed(self.members):
            member.stop()


def _reaped(pid: int) -> bool:
    """True when the server's process has ended (it is reaped here; its owner then sees it gone)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid
