"""Connections to targets a mission chose: resolve once, judge every address, connect to it.

A host's text proves nothing (`0x7f000001`, `localhost.`, a name `/etc/hosts` or DNS maps to
127.0.0.1), so the check happens after resolution, on the addresses themselves, and the
connection goes to an address that passed: no second lookup a rebinding DNS server could answer
differently. TLS still verifies the name the URL gave.

Endpoints the operator configured (the LLM endpoint, stores in settings) do not come here.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from rustchain.domain.policy.model import NetworkPolicy
from rustchain.domain.policy.network_addresses import (
    AddressRules,
    IPAddress,
    address_text,
    parse_address,
)
from rustchain.steps.support.runtime import PolicyRefusedError, StepContext, StepRunError

# Resolves a host for a port to address texts, as getaddrinfo does (tests inject a fake one).
Resolver = Callable[[str, int], Awaitable[list[str]]]
MAX_ADDRESSES = 16


class NetworkTargetRefusedError(PolicyRefusedError):
    """A connection whose target resolved to no address the policy lets a mission reach."""


class UnresolvedTargetError(StepRunError):
    """A target whose name did not resolve (in time)."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the operating system's resolver gives for a TCP connection."""
    loop = asyncio.get_running_loop()
    found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(entry[4][0]) for entry in found]


@dataclass(frozen=True)
class TargetGuard:
    """Resolves a mission's target and keeps the addresses the rules allow."""

    rules: AddressRules
    resolver: Resolver = field(default=system_resolver)

    async def addresses(self, host: str, port: int, timeout: float | None = None) -> list[str]:
        """The allowed addresses of `host` (as connect takes them), or a refusal naming why."""
        literal = parse_address(host)
        try:
            async with asyncio.timeout(timeout):
                # An address written as itself needs no lookup (a thread hop saved per request);
                # every other spelling, `0x7f000001` included, goes to the resolver.
                found = [str(literal)] if literal else await self.resolver(host, port)
        except TimeoutError:
            raise UnresolvedTargetError(f"resolving {host} took longer than {timeout}s") from None
        except (OSError, UnicodeError) as error:
            raise UnresolvedTargetError(f"cannot resolve {host}: {error}") from None
        allowed: list[IPAddress] = []
        reasons: list[str] = []
        for text in dict.fromkeys(found[: MAX_ADDRESSES * 4]):
            address = parse_address(text)
            if address is None:
                reasons.append(f"{text!r} is not an IP address")
                continue
            reason = self.rules.refusal(address)
            if reason is None:
                allowed.append(address)
            else:
                reasons.append(reason)
        if not allowed:
            why = "; ".join(reasons) or "it has no address"
            raise NetworkTargetRefusedError(
                f"[network.address] {host} may not be reached: {why}; "
                "the tenant's policy refuses it at run time"
            )
        # connect takes IPv6 without brackets.
        return [address_text(a).strip("[]") for a in allowed[:MAX_ADDRESSES]]


def guard_for(context: StepContext, resolver: Resolver = system_resolver) -> TargetGuard:
    """The guard for a step: its tenant's policy, or the default policy's rules without one."""
    network: NetworkPolicy = context.enforced_policy.network
    return TargetGuard(AddressRules.from_policy(network), resolver)
