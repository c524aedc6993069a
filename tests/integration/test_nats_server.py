"""The embedded nats-server: JetStream on, fsync policy as configured, NATS_URL respected."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from rustchain.platform.nats.server import (
    LAZY_SYNC,
    NatsServer,
    NatsServerError,
    NatsServerSettings,
    start_nats,
)


def _jetstream_config(server: NatsServer) -> dict[str, Any]:
    url = f"http://127.0.0.1:{server.monitor_port}/varz"
    with urllib.request.urlopen(url, timeout=5) as response:
        config: dict[str, Any] = json.load(response)["jetstream"]["config"]
    return config


def test_embedded_server_syncs_before_every_ack_by_default(tmp_path: Path) -> None:
    url, server = start_nats(tmp_path, environ={})
    assert server is not None
    try:
        config = _jetstream_config(server)
        assert url == server.url
        assert config["sync_always"] is True
        assert Path(config["store_dir"]).is_relative_to(tmp_path / "nats")
    finally:
        server.stop()


def test_lazy_sync_is_the_servers_own_default(tmp_path: Path) -> None:
    _, server = start_nats(tmp_path, environ={"RUSTCHAIN_NATS_SYNC": LAZY_SYNC})
    assert server is not None
    try:
        assert "sync_always" not in _jetstream_config(server)
    finally:
        server.stop()


def test_nats_url_selects_an_external_server_and_starts_none(tmp_path: Path) -> None:
    url, server = start_nats(tmp_path, environ={"NATS_URL": "nats://nats.example:4222"})

    assert (url, server) == ("nats://nats.example:4222", None)
    assert not (tmp_path / "nats").exists()


def test_a_server_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    server = NatsServer(NatsServerSettings(store_dir=tmp_path, sync_interval="not-a-duration"))

    with pytest.raises(NatsServerError, match="nats-server exited at start"):
        server.start()
    server.stop()
