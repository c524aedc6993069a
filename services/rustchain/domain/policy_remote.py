"""Policy sections for steps that log in to another machine: `ssh` and `ftp`.

Both deny by default: no host is listed, so every `ssh_execute`, `ftp_upload` and `ftp_download`
step is refused until the tenant's policy names the hosts, ports and login names it may use.
A host is judged twice: as written (against `hosts`), and after name resolution, on each address
(against `denied_hosts`, and loopback, link-local and unspecified addresses unless `hosts` names
the address itself), as `http` steps are.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

_SECTION = ConfigDict(strict=True, extra="forbid", frozen=True)
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


class FtpPolicy(RemoteHostsPolicy):
    """Where `ftp_upload` and `ftp_download` may log in, and whether plain FTP is allowed."""

    ports: list[Port] = Field(default_factory=lambda: [21])
    # Plain FTP sends the password and the files in clear text: only FTP over TLS unless this.
    allow_plain: bool = False
