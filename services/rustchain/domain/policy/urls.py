"""URLs as regular languages: the well-formed ones, and a loose shape for later rules."""

from __future__ import annotations

from rustchain.domain.policy.regex import (
    ANYTHING,
    Lang,
    char_set,
    concat,
    literal,
    optional,
    plus,
    star,
    union,
)


def _url_parts() -> dict[str, Lang]:
    # Host names in lower case only: one spelling per host keeps host globs small for the solver.
    letter = char_set("abcdefghijklmnopqrstuvwxyz")
    digit = char_set("0123456789")
    label = plus(union(letter, digit, literal("-")))
    last_label = concat(
        star(union(letter, digit, literal("-"))), letter, star(union(letter, digit, literal("-")))
    )
    name = concat(star(concat(label, literal("."))), last_label)
    octet = union(
        digit,
        concat(char_set("123456789"), digit),
        concat(literal("1"), digit, digit),
        concat(literal("2"), char_set("01234"), digit),
        concat(literal("25"), char_set("012345")),
    )
    ipv4 = concat(octet, literal("."), octet, literal("."), octet, literal("."), octet)
    ipv6 = concat(literal("["), plus(char_set("0123456789abcdef:.")), literal("]"))
    forbidden = "".join(chr(c) for c in range(33)) + "\x7f\\"
    return {
        "scheme": concat(
            char_set("abcdefghijklmnopqrstuvwxyz"), star(union(letter, digit, char_set("+.-")))
        ),
        "userinfo": optional(concat(star(char_set(forbidden + "/?#@", negate=True)), literal("@"))),
        "host": union(name, ipv4, ipv6),
        "ipv4": ipv4,
        "port": plus(digit),
        "rest": optional(concat(char_set("/?#"), star(char_set(forbidden, negate=True)))),
    }


URL_PARTS: dict[str, Lang] = _url_parts()


def url_language(scheme: Lang, host: Lang, port: Lang) -> Lang:
    """Well-formed URLs whose scheme, host and port (with its colon) are in the given languages."""
    return concat(scheme, literal("://"), URL_PARTS["userinfo"], host, port, URL_PARTS["rest"])


# After `network.url` (checked first, here and at run time) every URL is well formed, so the
# later rules may pick out host and port loosely: the same verdicts, far smaller solver queries.
LOOSE_HOST = union(
    plus(char_set("/?#@:[]\\ \t\n\r", negate=True)),
    concat(literal("["), star(char_set("]", negate=True)), literal("]")),
)
LOOSE_PORT = optional(concat(literal(":"), star(char_set("/?#", negate=True))))
_LOOSE_REST = optional(concat(char_set("/?#"), ANYTHING))


def loose_url(host: Lang, port: Lang) -> Lang:
    """URLs, told apart only by host and port: for rules checked after `network.url`."""
    userinfo = optional(concat(star(char_set("/?#@", negate=True)), literal("@")))
    scheme = plus(char_set(":/?#@", negate=True))
    return concat(scheme, literal("://"), userinfo, host, port, _LOOSE_REST)
