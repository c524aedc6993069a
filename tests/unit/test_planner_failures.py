"""What the planner's status table sees of a failed call to the verifier or the executor: only
the project's own error kinds, or a refusal of the caller's request to hand back as it came."""

from __future__ import annotations

import grpc
import pytest

from rustchain.planner.clients import DownstreamError, _failure
from rustchain.planner.servicer import STATUS
from rustchain.platform.grpc.client import ServiceUnavailableError
from rustchain.platform.grpc.server import status_for
from rustchain.verifier.servicer import STATUS as VERIFIER_STATUS


def _call_failed(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


def test_a_corrupt_history_downstream_is_the_planners_internal_error_naming_it() -> None:
    error = _failure(
        _call_failed(grpc.StatusCode.DATA_LOSS, "event #1 does not hold a PlanVerified"),
        "verifier",
        "127.0.0.1:1",
    )

    assert isinstance(error, DownstreamError) and error.code is grpc.StatusCode.DATA_LOSS
    assert str(error) == (
        "the verifier at 127.0.0.1:1 failed: data_loss: event #1 does not hold a PlanVerified"
    )
    assert status_for(error, STATUS) is grpc.StatusCode.INTERNAL


def test_an_unreachable_service_is_unavailable() -> None:
    error = _failure(_call_failed(grpc.StatusCode.UNAVAILABLE, "gone"), "executor", "h:1")

    assert isinstance(error, ServiceUnavailableError)
    assert status_for(error, STATUS) is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.RESOURCE_EXHAUSTED]
)
def test_a_refusal_of_the_callers_request_is_handed_back_as_it_came(
    code: grpc.StatusCode,
) -> None:
    refusal = _call_failed(code, "no")

    assert _failure(refusal, "executor", "h:1") is refusal


def test_the_tables_map_only_the_projects_own_errors() -> None:
    for table in (STATUS, VERIFIER_STATUS):
        assert all(kind.__module__.startswith("rustchain.") for kind in table)
