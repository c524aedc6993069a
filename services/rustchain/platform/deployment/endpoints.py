"""Where a deployment's services listen: `$RUSTCHAIN_HOME/endpoints.json` or RUSTCHAIN_ENDPOINT."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rustchain.platform.nats.server import external_nats_url

ENDPOINTS_FILE = "endpoints.json"
ENDPOINT_VARIABLE = "RUSTCHAIN_ENDPOINT"
SERVICES = ("planner", "verifier", "executor", "memory", "trainer")
PEERS: dict[str, tuple[str, ...]] = {"planner": ("verifier", "executor"), "executor": ("memory",)}
"""The services each service calls (the executor uses its home's memory when none is named)."""


class EndpointsError(ValueError):
    """An endpoints file or RUSTCHAIN_ENDPOINT that cannot be read; the message says which."""


@dataclass(frozen=True)
class Endpoints:
    """The `host:port` of each service of a deployment, its NATS URL and its supervisor's pid.

    A service run as several replicas (the executor under `rustchain up --executors N`) lists
    every replica in `replicas`; `services` names its first, so readers of one endpoint work."""

    services: dict[str, str] = field(default_factory=dict)
    nats_url: str | None = None
    pid: int | None = None
    replicas: dict[str, list[str]] = field(default_factory=dict)

    def target(self, service: str) -> str:
        """Every replica of the service as one endpoint (`ip:port,ip:port`) for open_channel."""
        return ",".join(self.replicas.get(service) or [self.services[service]])

    def to_json(self) -> str:
        """The file's contents."""
        document: dict[str, object] = {
            "services": self.services,
            "nats_url": self.nats_url,
            "pid": self.pid,
        }
        if self.replicas:
            document["replicas"] = self.replicas
        return json.dumps(document, indent=2, sort_keys=True) + "\n"


def endpoints_path(home: Path) -> Path:
    """The endpoints file of the deployment whose state is under `home`."""
    return home / ENDPOINTS_FILE


def write_endpoints(home: Path, endpoints: Endpoints) -> Path:
    """Write the file atomically (a reader never sees half of it); returns its path."""
    path = endpoints_path(home)
    scratch = path.with_suffix(".json.tmp")
    scratch.write_text(endpoints.to_json())
    scratch.replace(path)
    return path


def read_endpoints(path: Path) -> Endpoints:
    """The endpoints a file names."""
    try:
        document = json.loads(path.read_text())
        services = document["services"]
        replicas = document.get("replicas", {})
        if not isinstance(services, dict) or not isinstance(replicas, dict):
            raise TypeError("services and replicas must be objects")
        if not all(isinstance(listed, list) for listed in replicas.values()):
            raise TypeError("each service's replicas must be a list")
        return Endpoints(
            {str(k): str(v) for k, v in services.items()},
            document.get("nats_url"),
            document.get("pid"),
            {str(k): [str(e) for e in listed] for k, listed in replicas.items() if listed},
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise EndpointsError(f"cannot read the endpoints file {path}: {error}") from None


def _parse_pairs(text: str) -> Endpoints:
    """SERVICE=HOST:PORT pairs; a service named again is another replica of it."""
    services: dict[str, str] = {}
    replicas: dict[str, list[str]] = {}
    for item in text.split(","):
        name, equals, endpoint = item.strip().partition("=")
        if not equals or name not in SERVICES or not endpoint:
            raise EndpointsError(
                f"{ENDPOINT_VARIABLE} must name an endpoints file or list SERVICE=HOST:PORT"
                f" pairs separated by commas (a service named again is another replica),"
                f" found {item!r}"
            )
        services.setdefault(name, endpoint)
        replicas.setdefault(name, []).append(endpoint)
    several = {name: listed for name, listed in replicas.items() if len(listed) > 1}
    return Endpoints(services, replicas=several)


def configured_endpoints(home: Path, environ: Mapping[str, str] | None = None) -> Endpoints | None:
    """The deployment RUSTCHAIN_ENDPOINT names (a file, or pairs), else the home's file, if any."""
    env = os.environ if environ is None else environ
    named = env.get(ENDPOINT_VARIABLE)
    if named:
        return _parse_pairs(named) if "=" in named else read_endpoints(Path(named))
    path = endpoints_path(home)
    return read_endpoints(path) if path.is_file() else None


def process_alive(pid: int) -> bool:
    """True while a process of that id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_deployment(home: Path) -> Endpoints | None:
    """The deployment whose endpoints file is in `home`, if its supervisor still runs."""
    path = endpoints_path(home)
    if not path.is_file():
        return None
    endpoints = read_endpoints(path)
    if endpoints.pid is not None and not process_alive(endpoints.pid):
        return None
    return endpoints


def deployment_nats_url(home: Path, environ: Mapping[str, str] | None = None) -> str | None:
    """The NATS a process should use: NATS_URL, else the running deployment's, else None."""
    env = os.environ if environ is None else environ
    external = external_nats_url(env)
    if external is not None:
        return external
    endpoints = configured_endpoints(home, env)
    return endpoints.nats_url if endpoints is not None and endpoints.nats_url else None
