"""`rustchain audit verify` of a local home compares the stores with that home's own deployment's
JetStream, or says it skipped JetStream: never with whatever NATS listens on this machine."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from rustchain.platform.deployment.endpoints import Endpoints, write_endpoints
from rustchain.platform.nats.relay import JetStreamRelay
from rustchain.platform.nats.server import NatsServer
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from tests.paths import REPO

# What would point the command elsewhere than the home.
ELSEWHERE = ("NATS_URL", "RUSTCHAIN_ENDPOINT", "RUSTCHAIN_TOKEN")


def rustchain(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ELSEWHERE}
    env["RUSTCHAIN_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "rustchain", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=False,
    )


def _run_hello(home: Path) -> str:
    assert rustchain(home, "run", "missions/hello.yaml", "--var", "who=Ada").returncode == 0
    [mission] = re.findall(r"[0-9a-f]{32}", rustchain(home, "missions").stdout)
    return mission


def _relay_all(home: Path, url: str) -> None:
    for name in ("executor", "verifier"):
        store = open_event_store(EventStoreSettings(name=name, home=home))
        try:
            asyncio.run(JetStreamRelay(store, url).catch_up(timeout=30))
        finally:
            store.close()


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_without_a_deployment_jetstream_is_skipped_and_saying_so(tmp_path: Path) -> None:
    _run_hello(tmp_path)

    quiet = rustchain(tmp_path, "audit", "verify")
    required = rustchain(tmp_path, "audit", "verify", "--jetstream")

    assert quiet.returncode == 0, quiet.stderr
    assert (
        "jetstream: the JetStream comparison was skipped: no deployment runs on"
        f" {tmp_path} and NATS_URL is not set"
    ) in quiet.stderr
    assert "compared" not in quiet.stderr
    assert required.returncode == 3
    assert "--jetstream: no JetStream to compare with: no deployment runs on" in required.stderr


def test_a_local_home_compares_with_its_own_deployments_jetstream(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    _run_hello(tmp_path)
    _relay_all(tmp_path, nats_server.url)
    write_endpoints(tmp_path, Endpoints({}, nats_server.url, os.getpid()))

    compared = rustchain(tmp_path, "audit", "verify")
    write_endpoints(tmp_path, Endpoints({}, nats_server.url, _dead_pid()))
    gone = rustchain(tmp_path, "audit", "verify")

    assert compared.returncode == 0, compared.stderr
    assert (
        f"compared 9 stored events of 2 chain(s) with 9 in JetStream at {nats_server.url}"
    ) in compared.stderr
    assert "the stores and JetStream agree" in compared.stdout
    assert gone.returncode == 0, gone.stderr
    assert f"JetStream comparison was skipped: the deployment of {tmp_path} (pid" in gone.stderr
    assert "is gone" in gone.stderr
