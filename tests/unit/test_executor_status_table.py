"""The executor servicer's status table names only RustChain's own errors, so a bug's KeyError or
ValueError is never dressed up as the caller's fault (NOT_FOUND, INVALID_ARGUMENT)."""

from __future__ import annotations

import grpc

from rustchain.domain.events.upcast import UpcastError
from rustchain.executor.application import MissionNotFoundError
from rustchain.executor.servicer import STATUS
from rustchain.platform.grpc.server import status_for


def test_every_error_in_the_table_is_one_of_the_projects_own() -> None:
    foreign = [error.__name__ for error in STATUS if not error.__module__.startswith("rustchain.")]

    assert foreign == []


def test_a_bug_is_not_answered_as_the_callers_fault() -> None:
    assert status_for(KeyError("step"), STATUS) is None
    assert status_for(ValueError("bad"), STATUS) is None


def test_an_unknown_mission_is_not_found_and_an_unreadable_history_is_data_loss() -> None:
    assert status_for(MissionNotFoundError("no mission"), STATUS) is grpc.StatusCode.NOT_FOUND
    assert status_for(UpcastError("version 9"), STATUS) is grpc.StatusCode.DATA_LOSS
