"""The `ftp_download` step: fetch a file from an FTP server (over TLS unless allowed) into the
workspace."""

from __future__ import annotations

import ftplib
from typing import Any

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.checks import check_path
from rustchain.domain.policy.obligations import Obligation
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import StepDefinition
from rustchain.steps.support.ftp_transfer import (
    FtpParameters,
    check_ftp_step,
    ftp_constraints,
    ftp_session,
    transfer_output,
)
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.workspace_files import write_file


async def ftp_download(params: FtpParameters, context: StepContext) -> dict[str, Any]:
    """Retrieve `remote_file` (at most `max_bytes`), write it as `local_file` beneath the
    workspace (replacing it)."""
    # Checked before connecting: a refused path costs no transfer.
    check_ftp_step(params, context)
    context.enforce(check_path, params.local_file, write=True)

    def retrieve(client: ftplib.FTP) -> bytes:
        data = bytearray()

        def keep(chunk: bytes) -> None:
            data.extend(chunk)
            if len(data) > params.max_bytes:
                raise StepRunError(
                    f"remote_file '{params.remote_file}' is larger than max_bytes "
                    f"({params.max_bytes})"
                )

        client.retrbinary(f"RETR {params.remote_file}", keep)
        return bytes(data)

    data = await ftp_session(params, context, retrieve)
    write_file(context, params.local_file, data, overwrite=True, mode=None)
    return transfer_output(params, len(data))


STEP_TYPE = StepDefinition(
    "ftp_download", "Download a file over FTP(S)", FtpParameters, ftp_download
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The `ftp` section's rules; `local_file` is a path written."""
    return ftp_constraints(step, Sink.PATH_WRITE)


CONSTRAINTS = constraints
