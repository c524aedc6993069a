"""Resolved addresses are judged by the policy's denied globs and the ranges never meant; the
guard keeps only judged addresses, whatever name led to them."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from rustchain.domain.policy.model import NetworkPolicy
from rustchain.domain.policy.network_addresses import AddressRules, embedded_ipv4, parse_address
from rustchain.steps.support.network_guard import NetworkTargetRefusedError, TargetGuard

DEFAULT = AddressRules.from_policy(NetworkPolicy())
NOTHING_DENIED = AddressRules.of([], ["*"])


def _refusal(rules: AddressRules, text: str) -> str | None:
    address = parse_address(text)
    assert address is not None
    return rules.refusal(address)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "::1"],
)
def test_the_default_policy_denies_private_and_local_addresses(address: str) -> None:
    assert _refusal(DEFAULT, address) is not None


def test_public_addresses_pass_the_default_policy_and_ipv6_is_denied_by_its_glob() -> None:
    assert _refusal(DEFAULT, "93.184.216.34") is None
    assert _refusal(DEFAULT, "2606:2800:220:1:248:1893:25c8:1946") == (
        "[2606:2800:220:1:248:1893:25c8:1946] is in network.denied_hosts"
    )


@pytest.mark.parametrize(
    "address",
    [
        *("127.0.0.1", "127.8.9.10", "0.0.0.0", "0.1.2.3", "169.254.169.254", "224.0.0.1"),
        *("::1", "::", "fe80::1", "fe80::1%eth0", "::ffff:127.0.0.1", "::ffff:169.254.169.254"),
        *("64:ff9b::7f00:1", "2002:7f00:1::", "::7f00:1"),
    ],
)
def test_addresses_never_meant_are_refused_even_when_nothing_is_denied(address: str) -> None:
    assert "loopback, link-local" in (_refusal(NOTHING_DENIED, address) or "")


def test_an_allowed_entry_written_as_the_address_opens_it_and_a_wildcard_does_not() -> None:
    assert _refusal(AddressRules.of([], ["127.0.0.1"]), "127.0.0.1") is None
    assert _refusal(AddressRules.of([], ["[::1]"]), "::1") is None
    assert _refusal(AddressRules.of([], ["127.*"]), "127.0.0.2") is None
    assert _refusal(AddressRules.of([], ["*", "*.local", "localhost"]), "127.0.0.1") is not None
    # A denied glob wins over an allowance.
    assert _refusal(AddressRules.of(["127.*"], ["127.0.0.1"]), "127.0.0.1") is not None


def test_embedded_ipv4_addresses_are_judged_as_ipv4() -> None:
    rules = AddressRules.of(["10.*"], ["*"])
    assert _refusal(rules, "::ffff:10.0.0.1") == "10.0.0.1 is in network.denied_hosts"
    assert embedded_ipv4(ipaddress.ip_address("64:ff9b::a00:1")) == ipaddress.ip_address("10.0.0.1")
    assert embedded_ipv4(ipaddress.ip_address("2606:4700::1")) is None


def test_denied_globs_match_addresses_in_any_case() -> None:
    rules = AddressRules.of(["[2001:DB8:*"], ["*"])
    assert _refusal(rules, "2001:db8::1") is not None


def _guard(rules: AddressRules, table: dict[str, list[str]]) -> TargetGuard:
    async def resolve(host: str, port: int) -> list[str]:
        return table[host]

    return TargetGuard(rules, resolve)


def test_a_public_looking_name_mapped_to_loopback_is_refused() -> None:
    guard = _guard(DEFAULT, {"api.example.com": ["127.0.0.1"]})

    with pytest.raises(NetworkTargetRefusedError, match=r"api\.example\.com may not be reached"):
        asyncio.run(guard.addresses("api.example.com", 443))


def test_only_the_allowed_addresses_of_a_mixed_name_are_kept() -> None:
    table = {"mixed.example.com": ["10.0.0.5", "93.184.216.34", "::1", "93.184.216.34"]}

    kept = asyncio.run(_guard(DEFAULT, table).addresses("mixed.example.com", 443))

    assert kept == ["93.184.216.34"]


def test_a_resolver_answer_that_is_no_address_is_refused() -> None:
    guard = _guard(NOTHING_DENIED, {"odd.example.com": ["not-an-address"]})

    with pytest.raises(NetworkTargetRefusedError, match="is not an IP address"):
        asyncio.run(guard.addresses("odd.example.com", 443))
