"""How a service ends a call for an error, including a refusal from a service it called."""

from __future__ import annotations

import asyncio
from typing import Any, NoReturn

import grpc
import pytest

from rustchain.platform.grpc.server import abort_with


class AbortedError(Exception):
    """What the fake context raises, as grpc's does, to end the handler."""


class RecordingContext:
    """The one method of a servicer context that abort_with uses."""

    def __init__(self) -> None:
        self.status: tuple[grpc.StatusCode, str] | None = None

    async def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        self.status = (code, details)
        raise AbortedError


def _downstream(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


def _abort(error: Exception) -> tuple[grpc.StatusCode, str] | None:
    context = RecordingContext()
    table = {
        ValueError: grpc.StatusCode.INVALID_ARGUMENT,
        grpc.aio.AioRpcError: grpc.StatusCode.INTERNAL,
    }

    async def run() -> None:
        await abort_with(context, error, table)  # type: ignore[arg-type]

    with pytest.raises(AbortedError):
        asyncio.run(run())
    return context.status


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
    ],
)
def test_a_downstream_refusal_of_the_callers_request_keeps_its_status_and_message(
    code: grpc.StatusCode,
) -> None:
    assert _abort(_downstream(code, "tenant 'acme' already runs 1 missions")) == (
        code,
        "tenant 'acme' already runs 1 missions",
    )


def test_a_downstream_fault_is_the_tables_status() -> None:
    status = _abort(_downstream(grpc.StatusCode.UNKNOWN, "boom"))
    assert status is not None and status[0] is grpc.StatusCode.INTERNAL


def test_an_error_of_the_table_gets_its_status_with_one_line_of_message() -> None:
    assert _abort(ValueError("bad\n  value")) == (grpc.StatusCode.INVALID_ARGUMENT, "bad value")


def test_an_error_not_in_the_table_is_raised_again() -> None:
    context: Any = RecordingContext()

    async def run() -> None:
        await abort_with(context, KeyError("x"), {ValueError: grpc.StatusCode.INVALID_ARGUMENT})

    with pytest.raises(KeyError):
        asyncio.run(run())
