"""The egress proxy's side of HTTP/1.1: request heads in, refusals out (nothing connects here)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

_HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization", b"host"}
    | {b"proxy-authenticate", b"te", b"trailer", b"upgrade"}
)


class ProxyRefusedError(Exception):
    """A request the proxy answers with an error status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


_STATUS_TEXT = {
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True)
class ProxyTarget:
    """Where a request asks to go, and how."""

    host: str
    port: int
    tunnel: bool
    head: bytes  # what to send upstream first (a forwarded request), or nothing for a tunnel


async def read_target(reader: asyncio.StreamReader, head_seconds: float) -> ProxyTarget:
    """The target of the request head a client sends, or a refusal to answer with."""
    try:
        async with asyncio.timeout(head_seconds):
            head = await reader.readuntil(b"\r\n\r\n")
    except TimeoutError:
        raise ProxyRefusedError(408, "no complete request head in time") from None
    except asyncio.LimitOverrunError:
        raise ProxyRefusedError(431, "the request head is too large") from None
    except asyncio.IncompleteReadError:
        raise ProxyRefusedError(400, "the connection closed before a request head") from None
    lines = head[:-4].split(b"\r\n")
    words = lines[0].split(b" ")
    if len(words) != 3 or not words[2].startswith(b"HTTP/1."):
        raise ProxyRefusedError(400, "expected 'CONNECT host:port HTTP/1.1' or an absolute URL")
    method, target, version = words
    try:
        text = target.decode("ascii")
    except UnicodeDecodeError:
        raise ProxyRefusedError(400, "the request target is not ASCII") from None
    if method == b"CONNECT":
        host, port = _authority(text)
        return ProxyTarget(host, port, True, b"")
    if not text.lower().startswith("http://"):
        raise ProxyRefusedError(400, "only CONNECT and absolute http:// URLs pass this proxy")
    rest = text[len("http://") :]
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, path = rest[:cut], rest[cut:].split("#", 1)[0] or "/"
    if "@" in authority:
        raise ProxyRefusedError(400, "credentials in the URL are not forwarded")
    host, port = _authority(authority, default_port=80)
    headers = [
        line for line in lines[1:] if line.split(b":", 1)[0].strip().lower() not in _HOP_BY_HOP
    ]
    shown = f"[{host}]" if ":" in host else host
    forwarded = [
        method + b" " + path.encode("ascii") + b" " + version,
        f"Host: {shown}:{port}".encode("ascii"),
        *headers,
        b"Connection: close",
    ]
    return ProxyTarget(host, port, False, b"\r\n".join(forwarded) + b"\r\n\r\n")


def _authority(text: str, default_port: int | None = None) -> tuple[str, int]:
    """Host and port of `host:port` or `[v6]:port` (the port may default)."""
    if text.startswith("["):
        end = text.find("]")
        after = text[end + 1 :]
        if end < 0 or (after and not after.startswith(":")):
            raise ProxyRefusedError(400, "a malformed IPv6 authority")
        host, port_text = text[1:end], after[1:]
    else:
        host, _, port_text = text.partition(":")
    if not port_text and default_port is not None:
        return _checked_host(host), default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536 or len(port_text) > 5:
        raise ProxyRefusedError(400, "the target needs a port from 1 to 65535")
    return _checked_host(host), int(port_text)


def _checked_host(host: str) -> str:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:")
    if not host or len(host) > 253 or not set(host) <= allowed:
        raise ProxyRefusedError(400, "the target host is not a host name or an address")
    return host


async def answer(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    """An error status with a one-line plain-text reason, then the end of the connection."""
    body = (reason.replace("\r", " ").replace("\n", " ") + "\n").encode("utf-8", "replace")
    head = (
        f"HTTP/1.1 {status} {_STATUS_TEXT.get(status, 'Error')}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    with contextlib.suppress(ConnectionError):
        writer.write(head.encode("ascii") + body)
        await writer.drain()
