"""One FTP session for `ftp_upload` and `ftp_download`: checked target, TLS, login, one transfer.

Python's `ftplib` speaks FTP over TLS (`FTP_TLS`: AUTH TLS before the login, PROT P for the
data connections); plain FTP only when the step says `tls: false` and the tenant's `ftp`
section says `allow_plain`. The control connection goes to a resolved address the policy
allows; TLS still verifies the name the step gave; passive data connections go to that same
address whatever the server's PASV reply names (ftplib's default), so a server can not point
the step at another machine. ftplib blocks, so the session runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import ftplib
import ssl
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, Use, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS
from rustchain.steps.support.network_guard import UnresolvedTargetError
from rustchain.steps.support.remote_targets import (
    check_target,
    check_user,
    credential_uses,
    resolve_target,
)
from rustchain.steps.support.runtime import PolicyRefusedError, StepContext, StepRunError

MAX_TRANSFER_BYTES = 100 * 1024 * 1024
T = TypeVar("T")


class FtpParameters(BaseModel):
    """RustChain's host, username, password, local_file and remote_file; our port, tls and
    bounds."""

    model_config = PARAMETERS
    host: Annotated[str, Field(min_length=1)]
    username: Annotated[str, Field(min_length=1)] = "anonymous"
    # From the tenant's secrets only (`{secrets.NAME}`); empty for an anonymous login.
    password: str = ""
    local_file: Annotated[str, Field(min_length=1)]
    remote_file: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 21
    tls: bool = True
    timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    max_bytes: Annotated[int, Field(ge=1, le=MAX_TRANSFER_BYTES)] = MAX_TRANSFER_BYTES


def check_ftp_step(params: FtpParameters, context: StepContext) -> None:
    """What the `ftp` section decides about the step as written (before any file is read)."""
    check_target(context, "ftp", params.host, params.port)
    check_user(context, Sink.FTP_USER, params.username)
    if not params.tls and not context.enforced_policy.ftp.allow_plain:
        raise PolicyRefusedError(
            "[ftp.plain] tls: false sends the password and files in clear text; the tenant's "
            "policy does not allow plain FTP (ftp.allow_plain)"
        )
    if any(c in params.remote_file for c in "\r\n\0"):
        raise StepRunError("remote_file holds a line break or NUL, which FTP cannot send")


async def ftp_session(
    params: FtpParameters, context: StepContext, transfer: Callable[[ftplib.FTP], T]
) -> T:
    """Log in as the step says, run `transfer` on the session, close it."""
    check_ftp_step(params, context)
    timeout = min(params.timeout_seconds, context.timeout_seconds)
    try:
        target = await resolve_target(context, "ftp", params.host, params.port, timeout)
    except UnresolvedTargetError as error:
        raise StepRunError(str(error)) from None
    name = params.host.strip("[]")

    def session() -> T:
        client = _client(params.tls, timeout)
        try:
            errors: list[str] = []
            for address in target.addresses:
                try:
                    client.connect(address, params.port, timeout)
                    break
                except OSError as error:
                    errors.append(f"{address}: {error}")
            else:
                raise StepRunError(f"cannot connect to {name} port {params.port}: {errors}")
            client.host = name  # TLS verifies the name the step gave, not the address
            if isinstance(client, ftplib.FTP_TLS):
                client.auth()
            client.login(params.username, params.password)
            if isinstance(client, ftplib.FTP_TLS):
                client.prot_p()
            result = transfer(client)
            client.quit()
            return result
        finally:
            client.close()

    try:
        async with asyncio.timeout(timeout + 1):
            return await asyncio.to_thread(session)
    except TimeoutError:
        raise StepRunError(f"ftp {name}: did not finish within {timeout:g} s") from None
    except ftplib.error_perm as error:
        raise StepRunError(f"ftp {name} refused: {error}") from None
    except ssl.SSLCertVerificationError as error:
        raise StepRunError(f"ftp {name}: its certificate is not trusted: {error}") from None
    except (ftplib.Error, OSError, EOFError, ValueError) as error:
        raise StepRunError(f"ftp {name} failed: {error}") from None


def _client(tls: bool, timeout: float) -> ftplib.FTP:
    if tls:
        return ftplib.FTP_TLS(context=ssl.create_default_context(), timeout=timeout)
    return ftplib.FTP(timeout=timeout)


def ftp_constraints(step: PlannedStep, local_sink: Sink) -> list[Obligation]:
    """Host, port and user under the `ftp` section; the local file as a path read or written;
    plain FTP only if allowed; the password only from secrets."""
    parameters = step.parameters
    uses: list[Obligation] = [
        *text_uses(Sink.FTP_HOST, "host", parameters.get("host")),
        Use(Sink.FTP_PORT, "port", str(parameters.get("port", 21))),
        *text_uses(Sink.FTP_USER, "username", parameters.get("username", "anonymous")),
        *text_uses(local_sink, "local_file", parameters.get("local_file")),
        *credential_uses(parameters, ("password",)),
    ]
    if parameters.get("tls", True) is False:
        uses.append(Use(Sink.FTP_PLAIN, "tls", "false"))
    return uses


def transfer_output(params: FtpParameters, size: int) -> dict[str, Any]:
    """What an ftp step reports."""
    return {
        "host": params.host,
        "remote_file": params.remote_file,
        "local_file": params.local_file,
        "bytes": size,
        "tls": params.tls,
    }
