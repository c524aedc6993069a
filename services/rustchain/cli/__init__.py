"""The `rustchain` command."""

from __future__ import annotations

import sys

import grpc

from rustchain.cli import exit_codes
from rustchain.cli.app import app

# A refused credential is the caller's to fix (like a usage error); an unreachable service is 3.
_RPC_EXIT_CODES = {
    grpc.StatusCode.UNAUTHENTICATED: exit_codes.USAGE,
    grpc.StatusCode.PERMISSION_DENIED: exit_codes.USAGE,
    grpc.StatusCode.UNAVAILABLE: exit_codes.UNREACHABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: exit_codes.UNREACHABLE,
}


def main() -> None:
    """Entry point of the `rustchain` console script: never a traceback, always an exit code."""
    try:
        app.main(prog_name="rustchain", standalone_mode=True)
    except KeyboardInterrupt:
        sys.stderr.write("rustchain: interrupted\n")
        sys.exit(130)
    except grpc.aio.AioRpcError as error:
        code = error.code()
        sys.stderr.write(f"rustchain: {code.name.lower()}: {error.details()}\n")
        sys.exit(_RPC_EXIT_CODES.get(code, exit_codes.MISSION_AT_FAULT))
    except Exception as error:
        sys.stderr.write(f"rustchain: internal error: {type(error).__name__}: {error}\n")
        sys.exit(1)
