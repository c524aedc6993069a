"""A failed gRPC call ends the command with one line and its exit code, though the entry point
never imports gRPC itself."""

from __future__ import annotations

import grpc
import pytest

from rustchain.cli import _rpc_failure, exit_codes


def _error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "told why")


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [
        (grpc.StatusCode.PERMISSION_DENIED, exit_codes.USAGE),
        (grpc.StatusCode.UNAUTHENTICATED, exit_codes.USAGE),
        (grpc.StatusCode.UNAVAILABLE, exit_codes.UNREACHABLE),
        (grpc.StatusCode.DEADLINE_EXCEEDED, exit_codes.UNREACHABLE),
        (grpc.StatusCode.INTERNAL, exit_codes.MISSION_AT_FAULT),
    ],
)
def test_a_failed_call_is_one_line_and_its_exit_code(code: grpc.StatusCode, exit_code: int) -> None:
    assert _rpc_failure(_error(code)) == (
        f"rustchain: {code.name.lower()}: told why\n",
        exit_code,
    )


def test_any_other_error_is_not_a_failed_call() -> None:
    assert _rpc_failure(ValueError("no")) is None
