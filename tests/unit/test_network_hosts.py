"""Numeric hosts are read as the parsers that connect read them, and a host a variable spells
can never be a number in disguise."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rustchain.domain.policy.checks import check_url, check_value
from rustchain.domain.policy.model import NetworkPolicy, Policy
from rustchain.domain.policy.network_hosts import (
    NONCANONICAL_HOST,
    canonical_host,
    canonical_url,
    ends_in_number,
)
from rustchain.domain.policy.rules import Sink
from tests.unit.compile_helpers import compile_text
from tests.unit.verifier_helpers import verify

# Every host allowed, none denied: only the URL's shape and spelling can be refused.
OPEN = Policy(network=NetworkPolicy(allowed_hosts=["*"], denied_hosts=[]))


def _refused_as_written(host: str) -> bool:
    """Whether the rules refuse the host as written (a well-formed spelling of no address)."""
    refusal = check_value(OPEN, Sink.URL, f"https://{host}/")
    return refusal is not None and refusal.rule in ("network.url", "network.numeric_host")


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0177.0000.0.01", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f.0.0x0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("0xa9.0376.43518", "169.254.169.254"),
        ("4294967295", "255.255.255.255"),
        ("0x", "0.0.0.0"),
        ("[::ffff:7f00:1]", "127.0.0.1"),
        ("[::FFFF:127.0.0.1]", "127.0.0.1"),
        ("[::ffff:7f00:1]", "127.0.0.1"),
    ],
)
def test_numeric_spellings_canonicalise_to_the_address(host: str, address: str) -> None:
    assert canonical_host(host) == address
    assert _refused_as_written(host)
    assert not _refused_as_written(address)


def test_uncompressed_ipv6_is_judged_as_its_address_when_known() -> None:
    policy = Policy(network=NetworkPolicy(allowed_hosts=["*"], denied_hosts=["[::1]"]))

    assert canonical_host("[0:0:0:0:0:0:0:1]") == "[::1]"
    assert canonical_host("[0000::0001]") == "[::1]"
    refusal = check_url(policy, "https://[0:0:0:0:0:0:0:1]/")
    assert refusal is not None and refusal.rule == "network.host"


@pytest.mark.parametrize("host", ["example.com", "1x.example.com", "api", "0x7f.example.com"])
def test_names_stay_names(host: str) -> None:
    assert not ends_in_number(host)
    assert canonical_host(host) == host
    assert not NONCANONICAL_HOST.matches(host)
    assert not _refused_as_written(host)


@pytest.mark.parametrize("host", ["08", "1.2.3.256", "0x100000000", "api.0x7f", "1.2.3.4.5"])
def test_hosts_that_end_in_a_number_but_name_no_address_are_refused_as_written(host: str) -> None:
    assert ends_in_number(host)
    assert canonical_host(host) == host
    assert _refused_as_written(host)


def _spellings(address: int) -> st.SearchStrategy[str]:
    """The ways glibc's inet_aton and the URL standard read an IPv4 address."""
    octets = list(address.to_bytes(4, "big"))

    def number(value: int, form: str) -> str:
        return {"dec": str(value), "hex": hex(value), "oct": "0" + oct(value)[2:]}[form]

    forms = st.sampled_from(["dec", "hex", "oct"])
    return st.one_of(
        st.tuples(*(forms for _ in range(4))).map(
            lambda f: ".".join(number(o, x) for o, x in zip(octets, f, strict=True))
        ),
        st.tuples(forms, forms).map(
            lambda f: f"{number(octets[0], f[0])}.{number(address & 0xFFFFFF, f[1])}"
        ),
        st.tuples(forms, forms, forms).map(
            lambda f: (
                f"{number(octets[0], f[0])}.{number(octets[1], f[1])}."
                f"{number(address & 0xFFFF, f[2])}"
            )
        ),
        forms.map(lambda f: number(address, f)),
    )


@given(st.integers(0, 2**32 - 1).flatmap(lambda a: st.tuples(st.just(a), _spellings(a))))
def test_canonicalisation_agrees_with_the_c_resolver(case: tuple[int, str]) -> None:
    address, spelling = case
    expected = str(ipaddress.IPv4Address(address))

    assert socket.inet_ntoa(socket.inet_aton(spelling)) == expected
    assert canonical_host(spelling) == expected
    assert canonical_host(spelling + ".") == expected
    assert not _refused_as_written(expected)
    assert _refused_as_written(spelling) is (spelling != expected)


def test_a_url_is_rewritten_only_when_its_authority_is_whole() -> None:
    assert canonical_url("https://u:p@0x7f000001:8080/x?y#z") == "https://u:p@127.0.0.1:8080/x?y#z"
    assert canonical_url("https://[::ffff:a9fe:a9fe]/") == "https://169.254.169.254/"
    # A symbol may still follow: `https://0x7f000001` + `{x}` could be `...@evil.example`.
    assert canonical_url("https://0x7f000001", complete=False) == "https://0x7f000001"


def test_the_runtime_check_names_the_address_a_spelling_names() -> None:
    refusal = check_url(Policy(), "https://0xa9fea9fe/latest/meta-data")

    assert refusal is not None and refusal.rule == "network.host"
    assert "as https://169.254.169.254/latest/meta-data" in refusal.explanation
    assert refusal.value == "https://0xa9fea9fe/latest/meta-data"


def test_a_policy_without_the_ipv6_glob_still_sees_mapped_addresses() -> None:
    policy = Policy(network=NetworkPolicy(denied_hosts=["127.*"]))

    refusal = check_url(policy, "https://[::ffff:127.0.0.1]/")

    assert refusal is not None and refusal.rule == "network.host"


@pytest.mark.parametrize(
    ("pattern", "rule"),
    [
        ("0x[0-9a-f]{1,8}", "network.host"),  # 0x0 is 0.0.0.0: reported as that address
        ("[a-z]{1,4}x[0-9]{1,3}", None),  # starts with a letter: never a number
        ("[0-9a-f]{1,8}", "network.host"),  # `12` is 0.0.0.12
    ],
)
def test_a_variable_host_cannot_spell_an_address(pattern: str, rule: str | None) -> None:
    mission = f"""
version: "1.0"
name: spelled
variables:
  host: {{type: string, default: api, pattern: "{pattern}"}}
steps:
  - id: fetch
    step_type: http
    parameters: {{url: "https://api-{{host}}.example.com/v1"}}
  - id: bare
    step_type: http
    parameters: {{url: "https://{{host}}/v1"}}
"""
    plan = compile_text(mission).plan
    assert plan is not None
    verdict = verify(plan, Policy())

    found = {f.step_id: f.rule for f in verdict.violations}
    assert "fetch" not in found
    assert found.get("bare") == rule
