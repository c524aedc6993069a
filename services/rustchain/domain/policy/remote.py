"""Policy sections for steps that log in to another machine: `ssh` and `ftp`.

Both deny by default: no host is listed, so every `ssh_execute`, `ftp_upload` and `ftp_download`
step is refused until the tenant's policy names the hosts, ports and login names it may use.
A host is judged twice: as written (against `hosts`), and after name resolution, on each address
(against `denied_hosts`, and loopback, link-local and unspecified addresses unless `hosts` names
the address itself), as `http` steps are.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

_SECTION = ConfigDict(strict=True, extra="forbid", frozen=True, defer_build=True)
Glob = Annotated[str, Field(min_length=1)]
Port = Annotated[int, Field(ge=1, le=65535)]

# Cloud metadata endpoints: never a login target, whatever `hosts` says.
METADATA_HOSTS = ("169.254.*", "100.100.100.200", "metadata", "[fd00:ec2::254]")


class RemoteHostsPolicy(BaseModel):
    """Which machines a step may log in to, on which ports, as whom (globs; none: no machine)."""

    model_config = _SECTION
    # Host names or addresses as a step writes them (globs, lower case); none: the step type is
    # refused. Loopback and link-local addresses are reachable only when listed as addresses.
    hosts: list[Glob] = Field(default_factory=list)
    # Address (or name) globs refused after name resolution, whatever `hosts` allows.
    denied_hosts: list[Glob] = Field(default_factory=lambda: list(METADATA_HOSTS))
    ports: list[Port] = Field(default_factory=list)
    # Login names a step may use; none: no login.
    users: list[Glob] = Field(default_factory=list)


class SshPolicy(RemoteHostsPolicy):
    """Where `ssh_execute` may log in, which host keys it trusts and which commands it may run."""

    ports: list[Port] = Field(default_factory=lambda: [22])
    # Lines in OpenSSH known_hosts format: a server must present one of these keys for its name.
    known_hosts: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    # Accept any host key (trust on first use, without remembering it): unsafe, off by default.
    accept_unknown_host_keys: bool = False
    # The remote command lines a step may run (globs over the whole line).
    allowed_commands: list[Glob] = Field(default_factory=lambda: ["*"])

    @field_validator("known_hosts")
    @classmethod
    def _known_host_lines(cls, lines: list[str]) -> list[str]:
        for line in lines:
            reason = _known_host_problem(line)
            if reason is not None:
                raise ValueError(
                    f"known_hosts line {line[:60]!r} is not an OpenSSH known_hosts line "
                    f"('HOSTS KEYTYPE BASE64-KEY'): {reason}"
                )
        return lines


class FtpPolicy(RemoteHostsPolicy):
    """Where `ftp_upload` and `ftp_download` may log in, and whether plain FTP is allowed."""

    ports: list[Port] = Field(default_factory=lambda: [21])
    # Plain FTP sends the password and the files in clear text: only FTP over TLS unless this.
    allow_plain: bool = False


def _known_host_problem(line: str) -> str | None:
    """Why a known_hosts line cannot be one (its shape only: the key itself is read at run time)."""
    fields = line.split()
    if fields and fields[0] in ("@cert-authority", "@revoked"):
        fields = fields[1:]
    if len(fields) < 3:
        return "it needs the host patterns, the key type and the key"
    key_type, key = fields[1], fields[2]
    if not key_type.startswith(("ssh-", "ecdsa-", "sk-")):
        return f"{key_type!r} is not an SSH key type"
    try:
        base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        return "the key is not base64"
    return None
