"""A mission's http targets are judged after name resolution: no spelling of a loopback address
reaches a loopback server, with the verifier bypassed and with or without a tenant policy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from rustchain.domain.policy.model import NetworkPolicy, Policy
from rustchain.domain.policy.network_addresses import AddressRules
from rustchain.steps.support.guarded_http import GuardedTransport
from rustchain.steps.support.llm_client import URL_SETTING
from rustchain.steps.support.network_guard import TargetGuard, guard_for
from rustchain.steps.support.runtime import StepContext, StepRunError
from tests.integration.http_fixtures import LocalServer, json_answer, serve
from tests.integration.test_network_runners import loopback_policy, port_of, run_step


def _answer(method: str, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
    return json_answer({"reached": path})


@pytest.fixture
def loopback() -> Iterator[LocalServer]:
    yield from serve(_answer)


@pytest.fixture
def loopback6() -> Iterator[LocalServer]:
    yield from serve(_answer, host="::1")


def _open_policy(port: int) -> Policy:
    """Every host allowed and none denied by text: only the address check stands in the way."""
    network = NetworkPolicy(schemes=["http"], allowed_hosts=["*"], denied_hosts=[], ports=[port])
    return Policy(network=network)


SPELLINGS = [
    "http://0x7f000001:{port}/",
    "http://2130706433:{port}/",
    "http://0177.0.0.1:{port}/",
    "http://127.1:{port}/",
    "http://localhost:{port}/",
    "http://LOCALHOST:{port}/",
    "http://localhost.:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://[::ffff:7f00:1]:{port}/",
    "http://0.0.0.0:{port}/",
]


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("policy", ["none", "open"])
def test_no_spelling_of_loopback_reaches_a_loopback_server(
    spelling: str, policy: str, loopback: LocalServer, tmp_path: Path
) -> None:
    port = port_of(loopback)
    chosen = _open_policy(port) if policy == "open" else None

    # Without a policy no text rule runs: the refusal is the address check's (or the URL parser's).
    refused = r"may not be reached|cannot resolve|is not a valid URL" if not chosen else None
    with pytest.raises(StepRunError, match=refused):
        run_step("http", tmp_path, policy=chosen, url=spelling.format(port=port))

    assert loopback.requests == []


@pytest.mark.parametrize("policy", ["none", "open"])
def test_ipv6_loopback_is_refused(policy: str, loopback6: LocalServer, tmp_path: Path) -> None:
    port = port_of(loopback6)
    chosen = _open_policy(port) if policy == "open" else None

    with pytest.raises(StepRunError, match=r"\[::1\] is"):
        run_step("http", tmp_path, policy=chosen, url=f"http://[::1]:{port}/")

    assert loopback6.requests == []


def test_the_attack_spellings_do_reach_loopback_without_the_guard(loopback: LocalServer) -> None:
    # The control: plain httpx does connect, so the refusals above are the guard's doing.
    port = port_of(loopback)

    async def fetch(url: str) -> int:
        async with httpx.AsyncClient(trust_env=False) as client:
            return (await client.get(url)).status_code

    for url in (
        "http://0x7f000001:{port}/",
        "http://2130706433:{port}/",
        "http://localhost:{port}/",
    ):
        assert asyncio.run(fetch(url.format(port=port))) == 200
    assert len(loopback.requests) == 3


def test_an_address_allowed_by_name_in_allowed_hosts_is_reached(
    loopback: LocalServer, tmp_path: Path
) -> None:
    output = run_step("http", tmp_path, policy=loopback_policy(port_of(loopback)), url=loopback.url)

    assert output["body"] == {"reached": "/"}


def test_a_wildcard_allowance_does_not_open_loopback(loopback: LocalServer, tmp_path: Path) -> None:
    with pytest.raises(StepRunError, match="loopback, link-local"):
        run_step("http", tmp_path, policy=_open_policy(port_of(loopback)), url=loopback.url)

    assert loopback.requests == []


def test_a_tool_step_calling_http_is_guarded_too(loopback: LocalServer, tmp_path: Path) -> None:
    port = port_of(loopback)
    for alias in ("http", "http_request"):
        with pytest.raises(StepRunError, match="may not be reached"):
            run_step(
                "tool",
                tmp_path,
                policy=_open_policy(port),
                tool=alias,
                parameters={"url": f"http://localhost:{port}/"},
            )

    assert loopback.requests == []


def test_an_agent_calling_http_is_guarded_too(loopback: LocalServer, tmp_path: Path) -> None:
    # The model (trusted, from settings) answers on loopback; the tool call it asks for may not.
    port = port_of(loopback)
    script = [
        json.dumps({"tool": "http", "parameters": {"url": f"http://localhost:{port}/secret"}}),
        '{"final": "done"}',
    ]

    def model_answer(method: str, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
        turn = sum(m["role"] == "assistant" for m in body["messages"])
        message = {"role": "assistant", "content": script[min(turn, 1)]}
        return json_answer({"choices": [{"message": message}]})

    with contextmanager(serve)(model_answer) as model:
        settings = {URL_SETTING: f"{model.url}/v1"}
        output = run_step(
            "agent", tmp_path, settings, policy=_open_policy(port), objective="x", tools=["http"]
        )

    assert "may not be reached" in output["tool_calls"][0]["result"]
    assert loopback.requests == []


def test_a_step_without_policy_uses_the_default_rules(tmp_path: Path) -> None:
    guard = guard_for(StepContext("acme", "m1", "s1", tmp_path, 5))

    with pytest.raises(StepRunError, match=r"10\.0\.0\.1 is in network.denied_hosts"):
        asyncio.run(guard.addresses("10.0.0.1", 80))


def test_the_connection_goes_to_the_checked_address_without_a_second_lookup(
    loopback: LocalServer,
) -> None:
    # `app.invalid` resolves only through the guard's resolver (never in DNS): reaching the server
    # shows the connection used the address the guard judged, so DNS cannot answer twice.
    port = port_of(loopback)
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    async def fetch() -> httpx.Response:
        guard = TargetGuard(AddressRules.of([], ["127.0.0.1"]), resolve)
        async with httpx.AsyncClient(transport=GuardedTransport(guard)) as client:
            return await client.get(f"http://app.invalid:{port}/named")

    response = asyncio.run(fetch())

    assert response.json() == {"reached": "/named"}
    assert asked == ["app.invalid"]
    assert loopback.requests == [("GET", "/named", None)]
