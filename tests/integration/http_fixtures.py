"""A real HTTP server on a free loopback port, answering from a script the test controls."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Given (method, path, parsed JSON body or None): (status, headers, body bytes).
Handler = Callable[[str, str, Any], tuple[int, dict[str, str], bytes]]


@dataclass
class LocalServer:
    """The server's base URL and every request it received."""

    url: str
    requests: list[tuple[str, str, Any]] = field(default_factory=list)


def json_answer(value: Any, status: int = 200) -> tuple[int, dict[str, str], bytes]:
    """A JSON response."""
    return status, {"Content-Type": "application/json"}, json.dumps(value).encode()


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def serve(handler: Handler, host: str = "127.0.0.1") -> Iterator[LocalServer]:
    """Run the server for the duration of a fixture, on `127.0.0.1` or another loopback."""
    received: list[tuple[str, str, Any]] = []

    class _Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = (
                json.loads(raw)
                if raw and "json" in (self.headers.get("Content-Type") or "")
                else None
            )
            received.append((self.command, self.path, body))
            status, headers, payload = handler(self.command, self.path, body)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 - the stdlib's names

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = (_IPv6Server if ":" in host else ThreadingHTTPServer)((host, 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        shown = f"[{host}]" if ":" in host else host
        yield LocalServer(f"http://{shown}:{server.server_address[1]}", received)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
