"""A network grant under bubblewrap: the sandbox keeps its own network namespace (loopback only);
the executor's egress proxy (platform.egress_proxy) listens on a Unix socket bound into it, and a
bridge inside listens on 127.0.0.1 and forwards each connection to that socket, so HTTP_PROXY and
HTTPS_PROXY lead the program to the proxy, which lets through only the granted hosts and ports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

INNER_SOCKET = "/run/rustchain/egress.sock"


class RunningProxy(Protocol):
    """A proxy serving on a Unix socket."""

    @property
    def socket_path(self) -> Path:
        """Where it listens."""
        ...


EgressProxyStarter = Callable[
    [Path, Sequence[str], Sequence[int], Sequence[str]],
    AbstractAsyncContextManager[RunningProxy],
]
"""`EgressProxy.start(socket_path, hosts, ports, denied_hosts)`: serves until the block ends."""


def installed_egress_proxy() -> EgressProxyStarter:
    """The deployment's egress proxy (platform.egress_proxy)."""
    from rustchain.platform.sandbox.egress_proxy import EgressProxy

    starter: EgressProxyStarter = EgressProxy.start
    return starter


# Runs inside the sandbox with the system's python3 (-I -S: the standard library only): listens on
# 127.0.0.1, starts the program with the proxy variables, forwards connections to the Unix socket,
# and exits with the program's status (the PID namespace then ends the rest).
BRIDGE = r"""
import os, socket, sys, threading
path, program = sys.argv[1], sys.argv[2:]
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(64)
url = "http://127.0.0.1:%d" % listener.getsockname()[1]
env = dict(os.environ)
for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
    env[name] = url
child = os.fork()
if child == 0:
    listener.close()
    try:
        os.execvpe(program[0], program, env)
    except OSError as error:
        os.write(2, ("cannot run %s: %s\n" % (program[0], error.strerror)).encode())
        os._exit(127)
def pump(source, sink):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    try:
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass
def serve(client):
    upstream = socket.socket(socket.AF_UNIX)
    try:
        upstream.connect(path)
    except OSError:
        client.close()
        return
    back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
    back.start()
    pump(client, upstream)
    back.join()
    client.close()
    upstream.close()
def accept():
    while True:
        client = listener.accept()[0]
        threading.Thread(target=serve, args=(client,), daemon=True).start()
threading.Thread(target=accept, daemon=True).start()
status = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
os._exit(128 - status if status < 0 else status)
"""
