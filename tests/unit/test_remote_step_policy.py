"""The `ssh` and `ftp` policy sections and the rules of stepsc's step types: deny by default,
every rule has an unsafe mission, and bad sections are errors when the policy is read."""

from __future__ import annotations

import pytest

from rustchain.domain.language.diagnostics import DiagnosticSink
from rustchain.domain.policy.checks import check_value
from rustchain.domain.policy.model import Policy, parse_policy
from rustchain.domain.policy.rules import Sink
from tests.unit.test_verifier_missions import UNSAFE
from tests.unit.verifier_helpers import expectation, plan_of

REMOTE_RULES = {
    *("ssh.host", "ssh.port", "ssh.user", "ssh.command", "credentials.secret"),
    *("ftp.host", "ftp.port", "ftp.user", "ftp.plain"),
    *("network.host", "network.port", "network.numeric_host"),
}
REMOTE_TYPES = {
    *("ssh_execute", "ftp_upload", "ftp_download", "websocket_connect"),
    *("service_health", "ping_host"),
}


def test_every_remote_rule_and_step_type_has_an_unsafe_mission() -> None:
    found = [(expectation(p), p) for p in UNSAFE]
    rules = {e.rule for e, _ in found}
    types = {plan_of(p).step(e.step).step_type for e, p in found if e.step is not None}

    assert rules >= REMOTE_RULES
    assert types >= REMOTE_TYPES


@pytest.mark.parametrize(
    ("sink", "value"),
    [
        (Sink.SSH_HOST, "build.example.com"),
        (Sink.SSH_USER, "deploy"),
        (Sink.FTP_HOST, "files.example.com"),
        (Sink.FTP_USER, "anonymous"),
        (Sink.FTP_PLAIN, "false"),
    ],
)
def test_the_default_policy_grants_no_login(sink: Sink, value: str) -> None:
    assert check_value(Policy(), sink, value) is not None


def test_a_granted_login_passes_and_its_neighbours_do_not() -> None:
    policy = Policy.model_validate(
        {"ssh": {"hosts": ["build-*.example.com"], "users": ["deploy"], "ports": [22, 2222]}}
    )

    assert check_value(policy, Sink.SSH_HOST, "build-7.example.com") is None
    assert check_value(policy, Sink.SSH_PORT, "2222") is None
    assert check_value(policy, Sink.SSH_USER, "deploy") is None
    assert check_value(policy, Sink.SSH_HOST, "build-7.example.com.evil.org") is not None
    assert check_value(policy, Sink.SSH_HOST, "BUILD-7.example.com") is not None
    assert check_value(policy, Sink.SSH_HOST, "build-7.example.com:22") is not None
    assert check_value(policy, Sink.SSH_PORT, "22 ") is not None
    assert check_value(policy, Sink.SSH_USER, "deploy2") is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"ssh:\n  ports: [0]\n", "at least 1"),
        (b"ftp:\n  allow_plain: 'yes'\n", "true or false"),
        (b"ssh:\n  hostz: [a]\n", "hostz"),
        (b"ssh:\n  known_hosts: [build.example.com]\n", "needs the host patterns"),
        (b"ssh:\n  known_hosts: ['h rsa AAAA']\n", "not an SSH key type"),
        (b"ssh:\n  known_hosts: ['h ssh-ed25519 not*base64']\n", "not base64"),
    ],
)
def test_a_bad_section_is_an_error_where_it_is_written(text: bytes, message: str) -> None:
    sink = DiagnosticSink("policy.yaml")
    assert parse_policy(text, "policy.yaml", sink) is None
    assert any(message in d.render() for d in sink.sorted()), [d.render() for d in sink.sorted()]
