"""The network, login and host step types (SSH, FTP, WebSocket, health, ping, resources).

Listed in one place so the registry in `steps/__init__.py` takes them with one line.
"""

from __future__ import annotations

from rustchain.steps import (
    ftp_download,
    ftp_upload,
    monitor_resources,
    ping_host,
    service_health,
    ssh_execute,
    websocket_connect,
)

MODULES = (
    *(service_health, ping_host, websocket_connect, ssh_execute, ftp_upload, ftp_download),
    monitor_resources,
)
