"""Per-tenant quotas: read from the deployment's settings, and what each refuses."""

from __future__ import annotations

import pytest

from rustchain.domain.access.quotas import (
    ROOM_TO_START_BYTES,
    QuotaExceededError,
    TenantQuotas,
    check_stream_room,
    stream_hard_limit,
)


def test_quotas_come_from_the_settings_and_default_to_generous_limits() -> None:
    quotas = TenantQuotas.from_settings(
        {"RUSTCHAIN_MAX_CONCURRENT_MISSIONS": "3", "RUSTCHAIN_MAX_STREAM_BYTES": "1000000"}
    )
    assert quotas.max_concurrent_missions == 3
    assert quotas.max_stream_bytes == 1_000_000
    assert TenantQuotas.from_settings({}).max_stream_bytes == -1


def test_a_setting_that_is_not_a_number_is_named() -> None:
    with pytest.raises(ValueError, match="RUSTCHAIN_MAX_STREAM_BYTES expects a whole number"):
        TenantQuotas.from_settings({"RUSTCHAIN_MAX_STREAM_BYTES": "lots"})


def test_stream_room_is_refused_only_near_a_set_quota() -> None:
    check_stream_room("acme", 10**9, -1)  # no quota
    check_stream_room("acme", 0, ROOM_TO_START_BYTES)
    with pytest.raises(QuotaExceededError, match="160,001 of 200,000 bytes"):
        check_stream_room("acme", 160_001, 200_000)


def test_the_stream_refuses_events_only_above_its_quota() -> None:
    assert stream_hard_limit(-1) == -1
    assert stream_hard_limit(100_000_000) == 110_000_000
    assert stream_hard_limit(200_000) == 200_000 + 1_048_576
