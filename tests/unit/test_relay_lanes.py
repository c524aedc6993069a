"""A relay's per-tenant lane and its refusal reasons, without a server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import nats.errors
import nats.js.errors

from rustchain.platform.nats.jetstream import EventRoute
from rustchain.platform.nats.relay_refusals import message_size, refusal_reason, too_large
from rustchain.platform.nats.relay_tenants import TenantLane

OCCURRED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _data(size: int = 10) -> bytes:
    head = {
        "id": "e1",
        "tenant": "beta",
        "mission_id": "m1",
        "service": "executor",
        "sequence": 1,
        "type": "StepSucceeded",
        "occurred_at": OCCURRED.isoformat(),
    }
    return json.dumps({**head, "pad": "x" * size}).encode()


def test_a_paused_lane_holds_from_the_first_refused_event_and_doubles_its_backoff() -> None:
    lane = TenantLane("beta", position=10, in_doubt=0)
    assert lane.pause(20, _data(), "full", now=100.0, backoff=0.5)
    assert not lane.pause(25, _data(), "full", now=101.0, backoff=0.5)
    assert (lane.failed_at, lane.retry_at, lane.lag.refusals) == (20, 100.5, 1)
    # A refusal of an earlier event moves the pause back to it, without a new back-off.
    assert not lane.pause(15, _data(), "full", now=102.0, backoff=0.5)
    assert (lane.failed_at, lane.retry_at) == (15, 100.5)
    lane.still_refused("still full", now=110.0, backoff_max=0.8)
    lane.still_refused("still full", now=120.0, backoff_max=0.8)
    assert (lane.backoff, lane.retry_at, lane.lag.refusals) == (0.8, 120.8, 3)


def test_a_lane_counts_each_waiting_event_once_and_reports_its_age() -> None:
    lane = TenantLane("beta", position=10, in_doubt=0)
    lane.pause(20, _data(), "full", now=0.0, backoff=1.0)
    for position in (20, 22, 22, 20, 30):
        lane.wait(position)
    assert lane.lag.waiting == 3
    assert lane.lag.seconds_behind(OCCURRED + timedelta(seconds=90)) == 90.0
    lane.resume(20)
    assert (lane.paused, lane.position, lane.lag.waiting, lane.lag.seconds_behind()) == (
        False,
        20,
        0,
        0.0,
    )


def test_only_errors_about_the_stream_pause_a_tenant_others_are_outages() -> None:
    full = nats.js.errors.APIError(code=503, err_code=10077, description="maximum bytes exceeded")
    assert "is full" in (refusal_reason(full, "RUSTCHAIN_BETA", 500, 1024) or "")
    too_big = nats.js.errors.APIError(
        code=400, err_code=10054, description="message size exceeds maximum allowed"
    )
    assert "refused an event of 500 bytes" in (refusal_reason(too_big, "S", 500, 1024) or "")
    no_jetstream = nats.js.errors.ServiceUnavailableError(code=503, description="unavailable")
    assert refusal_reason(no_jetstream, "S", 500, 1024) is None
    assert refusal_reason(nats.errors.TimeoutError(), "S", 500, 1024) is None
    payload = refusal_reason(nats.errors.MaxPayloadError(), "S", 2000, 1024)
    assert payload is not None and "max_payload (1024 bytes)" in payload


def test_an_event_over_either_size_limit_is_told_before_it_is_sent() -> None:
    data = _data(2000)
    route = EventRoute.of(data)
    size = message_size(route, data)
    assert size > len(data) + len(route.stream)
    assert too_large(size, route.stream, max_payload=1_000_000, max_msg_size=-1) is None
    over_payload = too_large(size, route.stream, max_payload=1000, max_msg_size=-1)
    assert over_payload is not None and "NATS's max_payload" in over_payload
    over_stream = too_large(size, route.stream, max_payload=1_000_000, max_msg_size=1000)
    assert over_stream is not None and "max_msg_size of RUSTCHAIN_BETA" in over_stream


def test_a_lane_whose_stream_refused_an_event_never_trusts_chain_heads_again() -> None:
    lane = TenantLane("beta", position=10, in_doubt=0)
    lane.doubt(3000)
    assert lane.in_doubt == 3000
    lane.pause(20, _data(), "full", now=0.0, backoff=1.0)
    lane.resume(20)
    lane.doubt(3000)
    assert lane.in_doubt == 0
