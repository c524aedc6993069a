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

# Refused with the reason: a step's programs end with the step (steps/support/sandboxing.py), so a
# process can neither be left running nor found again by a later step; and no host pid is a
# mission's to kill. See docs/security.md, "Processes".
_OUTLIVES = (
    "a program a step starts runs in the OS sandbox, which ends every process it started when "
    "the step ends, so nothing a mission starts can outlive its step"
)
REFUSALS: dict[str, str] = {
    "process_start": (
        f"RustChain-Python refuses 'process_start' steps: {_OUTLIVES}; run the program with a "
        "'command' step (it waits for the program to finish), or run long-lived services "
        "outside the mission"
    ),
    "process_kill": (
        "RustChain-Python refuses 'process_kill' steps: a mission may only end processes it "
        f"started, and {_OUTLIVES}; no other process of the host is a mission's to kill"
    ),
}
