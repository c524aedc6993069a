"""A URL's host as the address it names: numeric spellings canonicalised before host rules apply.

URL parsers and the C resolver read more than dotted decimal as an IPv4 address: `0x7f000001`,
`2130706433`, `0177.0.0.1`, `127.1`, `127.0.0.1.` and IPv6 `[::ffff:7f00:1]` all name 127.0.0.1
(the WHATWG URL standard's IPv4 parser, and glibc's `inet_aton`, which it extends). A known host
is rewritten to the address before the policy's host globs see it; a host a variable spells can
be judged only if it cannot be such a spelling, which `NONCANONICAL_HOST` expresses.
"""

from __future__ import annotations

import ipaddress

from rustchain.domain.policy.regex import (
    ANYTHING,
    Lang,
    char_set,
    concat,
    literal,
    optional,
    star,
    union,
)

_HEX = "0123456789abcdefABCDEF"


def _number(part: str) -> int | None:
    """A WHATWG IPv4 number: `0x` hex (digits may be none), `0`-led octal, or decimal."""
    if part[:2] in ("0x", "0X"):
        digits, radix = part[2:], 16
    elif len(part) > 1 and part.startswith("0"):
        digits, radix = part[1:], 8
    else:
        digits, radix = part, 10
    if not digits:
        return 0 if radix != 10 else None
    allowed = {16: _HEX, 8: "01234567", 10: "0123456789"}[radix]
    if any(c not in allowed for c in digits):
        return None
    return int(digits, radix)


def _parts(host: str) -> list[str]:
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # one trailing dot, as DNS and the URL standard ignore it
    return parts


def ends_in_number(host: str) -> bool:
    """Whether URL parsers read the host as an IPv4 address (or reject it as a bad one)."""
    last = _parts(host)[-1]
    return bool(last) and ((last.isascii() and last.isdigit()) or _number(last) is not None)


def ipv4_of(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a numeric host names, or None when it is no valid one."""
    parts = _parts(host)
    numbers = [_number(p) if p else None for p in parts]
    if len(parts) > 4 or any(n is None for n in numbers):
        return None
    values = [n for n in numbers if n is not None]
    if any(n > 255 for n in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        return None
    total = values[-1] + sum(n << (8 * (3 - i)) for i, n in enumerate(values[:-1]))
    return ipaddress.IPv4Address(total)


def canonical_host(host: str) -> str:
    """The address a numeric host names, as a URL writes it; any other host unchanged."""
    if host.startswith("[") and host.endswith("]"):
        try:
            address = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return host
        mapped = address.ipv4_mapped
        return str(mapped) if mapped is not None else f"[{address.compressed}]"
    if not ends_in_number(host):
        return host
    address4 = ipv4_of(host)
    return host if address4 is None else str(address4)


def canonical_url(url: str, complete: bool = True) -> str:
    """The URL with its host canonicalised, when the text holds the whole authority: it ends
    within it, or `complete` says the text is the whole URL."""
    start = url.find("://")
    if start < 0:
        return url
    start += 3
    ends = [i for i in (url.find(c, start) for c in "/?#") if i >= 0]
    if not ends and not complete:
        return url
    end = min(ends, default=len(url))
    authority = url[start:end]
    at = authority.rfind("@") + 1
    host_port = authority[at:]
    if host_port.startswith("["):
        close = host_port.find("]") + 1
        host, port = (host_port[:close], host_port[close:]) if close else (host_port, "")
    else:
        host, colon, port = host_port.partition(":")
        port = colon + port
    return url[:start] + authority[:at] + canonical_host(host) + port + url[end:]


def _noncanonical_host() -> Lang:
    # Judged only after `network.url`, so the host is well formed: a lower-case name whose last
    # label has a letter, a canonical dotted quad, or `[` hex, `:` and `.` `]`. Of names, only a
    # `0x` hex last label ends in a number. Of IPv6 literals, those that carry an IPv4 address
    # (dotted, or IPv4-mapped) are refused, so IPv4 rules cannot be gone around; other IPv6
    # spellings (`[0:0:0:0:0:0:0:1]`) are judged as written here, and as the address by
    # `check_url` and at connection time. Written without complement, as few literals as can
    # be: each costs solver time in every query about a symbolic host.
    hex_name = concat(
        optional(concat(ANYTHING, literal("."))), literal("0x"), star(char_set("0123456789abcdef"))
    )
    carries_ipv4 = union(
        concat(literal("["), ANYTHING, literal("."), ANYTHING, literal("]")),
        concat(literal("[::ffff:"), ANYTHING),
    )
    return union(hex_name, carries_ipv4)


# Well-formed hosts that are numeric but not written as `canonical_host` writes an address: a
# host a variable could spell this way is refused, as its address is unknown until it runs.
NONCANONICAL_HOST: Lang = _noncanonical_host()
