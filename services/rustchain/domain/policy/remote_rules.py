"""Rules for steps that reach a host by name and port rather than by URL (stepsc's step types).

`service_health` and `ping_host` connect to a host and port under the `network` section;
`ssh_execute` and the `ftp_*` steps log in under the `ssh` and `ftp` sections. Each host text must
be one host as a URL writes it (lower-case name, dotted IPv4, bracketed IPv6), allowed by its
section and not spelt as a number other than the address itself; ports and login names come from
the section's lists. A credential must be a `{secrets.NAME}` reference (the generator only hands
over credentials that are not, so the rule refuses every value).

Keyed by the `Sink` values in `policy_rules` (which imports this module).
"""

from __future__ import annotations

from collections.abc import Sequence

from rustchain.domain.policy.languages import Rule
from rustchain.domain.policy.model import Policy
from rustchain.domain.policy.network_hosts import NONCANONICAL_HOST
from rustchain.domain.policy.patterns import any_glob
from rustchain.domain.policy.regex import ANYTHING, Lang, complement, literal, union
from rustchain.domain.policy.urls import URL_PARTS

CREDENTIAL_EXPLANATION = (
    "is a credential written in the mission (or built from its variables or outputs); "
    "credentials come from the tenant's secrets: write '{secrets.NAME}'"
)


def _host_rules(section: str, allowed: Sequence[str], denied: Sequence[str]) -> tuple[Rule, ...]:
    return (
        Rule(
            f"{section}.host",
            union(
                complement(URL_PARTS["host"]),
                complement(any_glob(list(allowed))),
                any_glob(list(denied)),
            ),
            f"may reach a host the policy does not allow ({section}: hosts, denied_hosts)",
        ),
        Rule(
            f"{section}.numeric_host",
            NONCANONICAL_HOST,
            "may spell an IP address other than as the address itself (hex, octal, a bare "
            "number, a short form), which host rules cannot judge before it is known",
        ),
    )


def _port_rule(section: str, ports: Sequence[int]) -> tuple[Rule, ...]:
    allowed: Lang = union(*(literal(str(p)) for p in ports))
    return (
        Rule(
            f"{section}.port",
            complement(allowed),
            f"may use a port the policy does not allow ({section}.ports)",
        ),
    )


def _user_rule(section: str, users: Sequence[str]) -> tuple[Rule, ...]:
    return (
        Rule(
            f"{section}.user",
            complement(any_glob(list(users))),
            f"may log in as a user the policy does not allow ({section}.users)",
        ),
    )


def remote_rules(policy: Policy) -> dict[str, tuple[Rule, ...]]:
    """The rules of each sink these step types use, by the sink's value."""
    network, ssh, ftp = policy.network, policy.ssh, policy.ftp
    plain_ftp: Lang = ANYTHING if not ftp.allow_plain else complement(ANYTHING)
    return {
        "network_host": _host_rules("network", network.allowed_hosts, network.denied_hosts),
        "network_port": _port_rule("network", network.ports),
        "ssh_host": _host_rules("ssh", ssh.hosts, ssh.denied_hosts),
        "ssh_port": _port_rule("ssh", ssh.ports),
        "ssh_user": _user_rule("ssh", ssh.users),
        "ssh_command": (
            Rule(
                "ssh.command",
                complement(any_glob(ssh.allowed_commands)),
                "may run a remote command the policy does not allow (ssh.allowed_commands)",
            ),
        ),
        "ftp_host": _host_rules("ftp", ftp.hosts, ftp.denied_hosts),
        "ftp_port": _port_rule("ftp", ftp.ports),
        "ftp_user": _user_rule("ftp", ftp.users),
        "ftp_plain": (
            Rule(
                "ftp.plain",
                plain_ftp,
                "uses plain FTP, which sends the password and files in clear text "
                "(ftp.allow_plain)",
            ),
        ),
        "credential": (Rule("credentials.secret", ANYTHING, CREDENTIAL_EXPLANATION),),
    }
