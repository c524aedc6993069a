"""The `rustchain` command."""

from __future__ import annotations

import sys

from rustchain.cli import exit_codes
from rustchain.cli.app import app

# A refused credential is the caller's to fix (like a usage error); an unreachable service is 3.
_RPC_EXIT_CODES = {
    "UNAUTHENTICATED": exit_codes.USAGE,
    "PERMISSION_DENIED": exit_codes.USAGE,
    "UNAVAILABLE": exit_codes.UNREACHABLE,
    "DEADLINE_EXCEEDED": exit_codes.UNREACHABLE,
}


def _rpc_failure(error: Exception) -> tuple[str, int] | None:
    """One line and the exit code for a failed gRPC call, or None for any other error.

    gRPC is looked up, not imported: a verb that never loaded it cannot have raised its error, and
    importing it here would slow every command.
    """
    grpc = sys.modules.get("grpc")
    if grpc is None or not isinstance(error, grpc.aio.AioRpcError):
        return None
    code = error.code()
    line = f"rustchain: {code.name.lower()}: {error.details()}\n"
    return line, _RPC_EXIT_CODES.get(code.name, exit_codes.MISSION_AT_FAULT)


def main() -> None:
    """Entry point of the `rustchain` console script: never a traceback, always an exit code."""
    try:
        app.main(prog_name="rustchain", standalone_mode=True)
    except KeyboardInterrupt:
        sys.stderr.write("rustchain: interrupted\n")
        sys.exit(130)
    except Exception as error:
        failure = _rpc_failure(error)
        if failure is None:
            failure = f"rustchain: internal error: {type(error).__name__}: {error}\n", 1
        line, code = failure
        sys.stderr.write(line)
        sys.exit(code)
