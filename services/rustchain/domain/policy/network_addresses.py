"""Which resolved IP addresses a connection a mission chose may reach.

A host name is only text; what a connection reaches is the address it resolves to. Runners and
the egress proxy resolve first, judge every address here, and connect to an address judged here.
An address is written as a URL writes it (`127.0.0.1`, `[::1]`), so the policy's
`network.denied_hosts` globs apply to it as they apply to a URL's host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from rustchain.domain.policy.model import NetworkPolicy
from rustchain.domain.policy.patterns import any_glob
from rustchain.domain.policy.regex import Lang

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Never meant by a mission: this machine (loopback, `0.0.0.0`, which Linux treats as local, and
# the rest of 0.0.0.0/8), its link (link-local, where cloud metadata services answer) and
# multicast. Only an allowed entry written as an address reaches them.
_ALWAYS_DENIED = tuple(
    ipaddress.ip_network(n)
    for n in (
        *("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32"),
        *("::/128", "::1/128", "fe80::/10", "ff00::/8"),
    )
)
# IPv6 prefixes that carry an IPv4 address a gateway may forward to: NAT64 (RFC 6052) and the
# IPv4-compatible form; mapped and 6to4 addresses are unwrapped by `ipaddress` itself.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPATIBLE = ipaddress.ip_network("::/96")


def address_text(address: IPAddress) -> str:
    """How a URL writes the address: dotted decimal, or compressed IPv6 in brackets."""
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    return f"[{address.compressed}]"


def parse_address(text: str) -> IPAddress | None:
    """An address from `getaddrinfo`'s text (IPv6 may carry a `%zone`); None if it is none."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64, compatible), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class AddressRules:
    """Denied address globs, plus the ranges never meant unless an allowed entry names them."""

    denied_hosts: tuple[str, ...]
    # Entries written as an address (`127.0.0.1`, `10.1.*`, `[::1]`): a wildcard entry such as
    # `*` allows every name, never this machine's own addresses.
    address_allowances: tuple[str, ...] = ()

    @classmethod
    def of(cls, denied_hosts: Sequence[str], allowed: Sequence[str] = ()) -> AddressRules:
        """Rules from globs; of `allowed`, only the entries written as addresses count."""
        explicit = tuple(p for p in allowed if p[:1].isdigit() or p.startswith("["))
        return cls(tuple(denied_hosts), explicit)

    @classmethod
    def from_policy(cls, network: NetworkPolicy) -> AddressRules:
        """The rules of a policy's `network` section."""
        return cls.of(network.denied_hosts, network.allowed_hosts)

    @cached_property
    def _denied(self) -> Lang:
        return any_glob(list(self.denied_hosts), ignore_case=True)

    @cached_property
    def _allowed(self) -> Lang:
        return any_glob(list(self.address_allowances), ignore_case=True)

    def refusal(self, address: IPAddress) -> str | None:
        """Why a connection may not reach this address; None when it may."""
        forms = [address]
        inner = embedded_ipv4(address)
        if inner is not None:
            forms.append(inner)
        for form in forms:
            text = address_text(form)
            if self._denied.matches(text):
                return f"{text} is in network.denied_hosts"
            never_meant = any(form in n for n in _ALWAYS_DENIED if n.version == form.version)
            if never_meant and not self._allowed.matches(text):
                return (
                    f"{text} is a loopback, link-local, unspecified or multicast address, "
                    "which only an allowed_hosts entry naming the address may reach"
                )
        return None
