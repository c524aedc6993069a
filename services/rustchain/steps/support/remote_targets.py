"""A host and port a step connects to without a URL: checked as written, resolved, connected.

The host text is judged by its section's rules (`network`, `ssh`, `ftp`; see
`domain/policy/remote_rules.py`), then resolved once by `network_guard.TargetGuard` with the
section's address rules, and the connection goes to an address that passed: the name a DNS server
answers for can not move the connection somewhere else between the check and the connect.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rustchain.domain.language.secret_refs import secret_names, secret_reference
from rustchain.domain.policy.checks import check_value
from rustchain.domain.policy.network_addresses import AddressRules
from rustchain.domain.policy.obligations import Obligation, Use
from rustchain.domain.policy.remote import RemoteHostsPolicy
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.network_guard import NetworkTargetRefusedError, TargetGuard, guard_for
from rustchain.steps.support.runtime import StepContext, StepRunError

_SINKS = {
    "network": (Sink.NETWORK_HOST, Sink.NETWORK_PORT),
    "ssh": (Sink.SSH_HOST, Sink.SSH_PORT),
    "ftp": (Sink.FTP_HOST, Sink.FTP_PORT),
}


class ConnectFailedError(StepRunError):
    """No allowed address of the host accepted a TCP connection in time."""


@dataclass(frozen=True)
class Target:
    """A host as the step wrote it, the port, and the addresses it may connect to."""

    host: str
    port: int
    addresses: Sequence[str]


def check_target(context: StepContext, section: str, host: str, port: int) -> None:
    """The host and port as written, against the section's rules (the default policy's when the
    executor gave none): refused with the rule and the value."""
    host_sink, port_sink = _SINKS[section]
    context.enforce(check_value, host_sink, host)
    context.enforce(check_value, port_sink, str(port))


def check_user(context: StepContext, sink: Sink, user: str) -> None:
    """A login name against the section's `users`."""
    context.enforce(check_value, sink, user)


def _guard(context: StepContext, section: str) -> TargetGuard:
    if section == "network":
        return guard_for(context)
    hosts: RemoteHostsPolicy = getattr(context.enforced_policy, section)
    return TargetGuard(AddressRules.of(hosts.denied_hosts, hosts.hosts))


async def resolve_target(
    context: StepContext, section: str, host: str, port: int, timeout: float
) -> Target:
    """Check the host and port, then resolve the host to the addresses the rules allow."""
    check_target(context, section, host, port)
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        addresses = await _guard(context, section).addresses(name, port, timeout)
    except NetworkTargetRefusedError as error:
        if section == "network":
            raise
        # The guard speaks of the `network` section; these rules came from this one.
        text = str(error).replace("[network.address]", f"[{section}.address]")
        text = text.replace("network.denied_hosts", f"{section}.denied_hosts")
        text = text.replace("an allowed_hosts entry", f"a {section}.hosts entry")
        raise NetworkTargetRefusedError(text) from None
    return Target(host, port, addresses)


async def connect_socket(target: Target, timeout: float) -> socket.socket:
    """A connected, non-blocking TCP socket to the first address of the target that answers."""
    loop = asyncio.get_running_loop()
    errors: list[str] = []
    deadline = time.monotonic() + timeout
    for address in target.addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(max(deadline - time.monotonic(), 0.001)):
                await loop.sock_connect(sock, (address, target.port))
        except TimeoutError:
            sock.close()
            errors.append(f"{address}: no answer within {timeout:g} s")
            break
        except OSError as error:
            sock.close()
            errors.append(f"{address}: {error.strerror or error}")
            continue
        return sock
    raise ConnectFailedError(
        f"cannot connect to {target.host} port {target.port}: {'; '.join(errors)}"
    )


def credential_uses(parameters: Mapping[str, Any], fields: Sequence[str]) -> list[Obligation]:
    """A credential that is not exactly one `{secrets.NAME}` reference breaks
    `credentials.secret`: it was written in the mission or built from other values."""
    uses: list[Obligation] = []
    for name in fields:
        value = parameters.get(name)
        if isinstance(value, str) and value and not _is_one_secret(value):
            uses.append(Use(Sink.CREDENTIAL, name, value))
    return uses


def _is_one_secret(value: str) -> bool:
    names = secret_names(value)
    return len(names) == 1 and value == secret_reference(names[0])
