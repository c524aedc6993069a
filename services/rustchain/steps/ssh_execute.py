"""The `ssh_execute` step: run a command on another machine over SSH (asyncssh).

The host, port, login name and command line must be allowed by the tenant's `ssh` section (none
is by default); the host's address is checked after resolution and the connection goes to it.
The server must present a host key the section lists (`ssh.known_hosts`), unless the section
says `accept_unknown_host_keys`. Credentials (`password`, `private_key`) come from the tenant's
secrets (`{secrets.NAME}`); the verifier refuses one written in the mission. Nothing of the
executor's own SSH setup is used: no ~/.ssh/config, default keys, agent or known_hosts file.

Unlike RustChain (which passed the command as one program name), `command` is a command line the
remote user's shell runs, as `ssh host 'command'` does.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.checks import byte_bound, check_bytes, check_value
from rustchain.domain.policy.obligations import ByteUse, Obligation, Use, text_uses
from rustchain.domain.policy.remote import SshPolicy
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.network_guard import UnresolvedTargetError
from rustchain.steps.support.remote_targets import (
    ConnectFailedError,
    check_user,
    connect_socket,
    credential_uses,
    resolve_target,
)
from rustchain.steps.support.runtime import PolicyRefusedError, StepContext, StepRunError

if TYPE_CHECKING:
    import asyncssh

OUTPUT_RULE = "commands.output"
CREDENTIAL_FIELDS = ("password", "private_key")


class SshExecuteParameters(BaseModel):
    """RustChain's `host`, `username` and `command`; our port, credentials and bounds."""

    model_config = PARAMETERS
    host: Annotated[str, Field(min_length=1)]
    username: Annotated[str, Field(min_length=1)]
    command: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    # From the tenant's secrets only: `{secrets.NAME}`.
    password: str | None = None
    private_key: str | None = None  # OpenSSH or PEM private key text
    timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    # None: the policy's bound (commands.max_output_bytes), for each of stdout and stderr.
    max_output_bytes: Annotated[int, Field(ge=1)] | None = None


def _known_hosts(ssh: SshPolicy) -> asyncssh.SSHKnownHosts | None:
    if ssh.accept_unknown_host_keys:
        return None
    if not ssh.known_hosts:
        raise PolicyRefusedError(
            "[ssh.known_hosts] the tenant's policy lists no SSH host keys (ssh.known_hosts), and "
            "accepting an unknown key would let anyone on the path pose as the host"
        )
    import asyncssh  # loaded when the step runs, not when a mission is validated

    try:
        return asyncssh.import_known_hosts("\n".join(ssh.known_hosts))
    except (ValueError, asyncssh.Error) as error:
        raise StepRunError(f"the policy's ssh.known_hosts cannot be read: {error}") from None


def _client_keys(params: SshExecuteParameters) -> list[asyncssh.SSHKey] | None:
    if params.private_key is None:
        return None  # None, not []: an empty list would load the executor's default keys
    import asyncssh

    try:
        return [asyncssh.import_private_key(params.private_key)]
    except (ValueError, asyncssh.KeyImportError) as error:
        raise StepRunError(f"private_key is not a private key asyncssh can read: {error}") from None


async def _read_capped(stream: asyncssh.SSHReader[bytes], limit: int, name: str) -> bytes:
    data = bytearray()
    while chunk := await stream.read(65536):
        data += chunk
        if len(data) > limit:
            raise StepRunError(f"the remote command wrote more than {limit} bytes to {name}")
    return bytes(data)


async def ssh_execute(params: SshExecuteParameters, context: StepContext) -> dict[str, Any]:
    """Run the command; output and exit status are the step's output (non-zero: it fails)."""
    policy = context.enforced_policy
    check_user(context, Sink.SSH_USER, params.username)
    context.enforce(check_value, Sink.SSH_COMMAND, params.command)
    max_output = byte_bound(policy, OUTPUT_RULE)
    if params.max_output_bytes is not None:
        context.enforce(check_bytes, OUTPUT_RULE, "max_output_bytes", params.max_output_bytes)
        max_output = params.max_output_bytes
    import asyncssh

    known_hosts = _known_hosts(policy.ssh)
    client_keys = _client_keys(params)
    timeout = min(params.timeout_seconds, context.timeout_seconds)
    try:
        target = await resolve_target(context, "ssh", params.host, params.port, timeout)
        sock = await connect_socket(target, timeout)
    except (UnresolvedTargetError, ConnectFailedError) as error:
        raise StepRunError(str(error)) from None
    try:
        async with asyncio.timeout(timeout):
            async with asyncssh.connect(
                params.host.strip("[]"),
                params.port,
                sock=sock,
                username=params.username,
                password=params.password,
                client_keys=client_keys,
                known_hosts=known_hosts,
                config=[],
                agent_path=None,
                x509_trusted_certs=None,
                x509_trusted_cert_paths=None,
                gss_host=None,
                kbdint_auth=False,
                login_timeout=timeout,
            ) as connection:
                process = await connection.create_process(params.command, encoding=None)
                async with process:
                    stdout, stderr = await asyncio.gather(
                        _read_capped(process.stdout, max_output, "stdout"),
                        _read_capped(process.stderr, max_output, "stderr"),
                    )
                    completed = await process.wait(check=False)
    except TimeoutError:
        raise StepRunError(f"ssh {params.host}: did not finish within {timeout:g} s") from None
    except asyncssh.HostKeyNotVerifiable as error:
        raise PolicyRefusedError(
            f"[ssh.known_hosts] {params.host} presented a host key the tenant's policy does not "
            f"list: {error.reason}"
        ) from None
    except asyncssh.PermissionDenied as error:
        raise StepRunError(
            f"ssh {params.username}@{params.host}: authentication failed ({error.reason})"
        ) from None
    except (asyncssh.Error, OSError, ValueError) as error:
        raise StepRunError(f"ssh {params.host} failed: {error}") from None
    finally:
        sock.close()
    status = completed.exit_status if completed.exit_status is not None else -1
    errors = stderr.decode("utf-8", "replace")
    output: dict[str, Any] = {
        "command": params.command,
        "stdout": stdout.decode("utf-8", "replace"),
        "stderr": errors,
        "exit_code": status,
    }
    if status != 0:
        tail = errors.strip()[-500:]
        raise StepRunError(
            f"'{params.command}' on {params.host} exited with status {status}"
            + (f": {tail}" if tail else "")
        )
    return output


STEP_TYPE = StepDefinition(
    "ssh_execute", "Run a command on another machine over SSH", SshExecuteParameters, ssh_execute
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """Host, port, user and command under the `ssh` section; credentials only from secrets."""
    parameters = step.parameters
    uses: list[Obligation] = [
        *text_uses(Sink.SSH_HOST, "host", parameters.get("host")),
        Use(Sink.SSH_PORT, "port", str(parameters.get("port", 22))),
        *text_uses(Sink.SSH_USER, "username", parameters.get("username")),
        *text_uses(Sink.SSH_COMMAND, "command", parameters.get("command")),
        ByteUse(OUTPUT_RULE, "max_output_bytes", parameters.get("max_output_bytes")),
    ]
    uses += credential_uses(parameters, CREDENTIAL_FIELDS)
    return uses


CONSTRAINTS = constraints
