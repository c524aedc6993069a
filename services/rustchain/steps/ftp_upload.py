"""The `ftp_upload` step: send a workspace file to an FTP server (over TLS unless allowed)."""

from __future__ import annotations

import ftplib
import io
from typing import Any

from rustchain.domain.plans.plan import PlannedStep
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
from rustchain.steps.support.runtime import StepContext
from rustchain.steps.support.workspace_files import read_bytes


async def ftp_upload(params: FtpParameters, context: StepContext) -> dict[str, Any]:
    """Read `local_file` beneath the workspace, store it as `remote_file`."""
    check_ftp_step(params, context)
    data = read_bytes(context, params.local_file, params.max_bytes, "local_file")

    def store(client: ftplib.FTP) -> int:
        client.storbinary(f"STOR {params.remote_file}", io.BytesIO(data))
        return len(data)

    return transfer_output(params, await ftp_session(params, context, store))


STEP_TYPE = StepDefinition("ftp_upload", "Upload a file over FTP(S)", FtpParameters, ftp_upload)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The `ftp` section's rules; `local_file` is a path read."""
    return ftp_constraints(step, Sink.PATH_READ)


CONSTRAINTS = constraints
