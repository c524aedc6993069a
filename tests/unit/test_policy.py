"""Policies: the file format, the default policy, and the concrete runtime checks."""

from __future__ import annotations

import pytest

from rustchain.domain.language.diagnostics import DiagnosticSink
from rustchain.domain.policy.checks import (
    check_command,
    check_data_flow,
    check_environment,
    check_model,
    check_path,
    check_tokens,
    check_tool,
    check_url,
)
from rustchain.domain.policy.model import FilesystemPolicy, NetworkPolicy, Policy, parse_policy
from rustchain.domain.policy.patterns import PatternError, exact_regex, glob
from rustchain.domain.policy.rules import Sink
from rustchain.verifier.policy_files import default_policy, default_policy_text

DEFAULT = Policy()


def _parse(text: str) -> tuple[Policy | None, list[str]]:
    sink = DiagnosticSink("policy.yaml")
    policy = parse_policy(text.encode(), "policy.yaml", sink)
    return policy, [d.render() for d in sink.sorted()]


def test_the_shipped_default_policy_file_is_the_model_default() -> None:
    shipped = default_policy()

    assert shipped.model_dump(exclude={"description"}) == DEFAULT.model_dump(
        exclude={"description"}
    )
    assert b"denied_hosts" in default_policy_text()


def test_a_tenant_file_states_only_what_differs() -> None:
    policy, errors = _parse("name: acme\nnetwork:\n  ports: [443, 8443]\n")

    assert errors == []
    assert policy is not None
    assert policy.network.ports == [443, 8443]
    assert policy.network.denied_hosts == DEFAULT.network.denied_hosts
    assert policy.commands == DEFAULT.commands


def test_an_empty_file_is_the_default_policy() -> None:
    policy, errors = _parse("")

    assert errors == [] and policy == DEFAULT


def test_policy_errors_are_reported_at_their_line_and_column() -> None:
    text = "commands:\n  allowed_programz: [ls]\nnetwork:\n  ports: [0]\n  schemes: https\n"

    policy, errors = _parse(text)

    assert policy is None
    assert [e.split(": error: ")[0] for e in errors] == [
        "policy.yaml:2:21",
        "policy.yaml:4:11",
        "policy.yaml:5:12",
    ]
    assert "allowed_programz" in errors[0]


def test_a_pattern_that_cannot_be_decided_exactly_is_refused_when_the_policy_is_read() -> None:
    policy, errors = _parse("commands:\n  denied_arguments: ['(?=a)b']\n")

    assert policy is None
    assert "cannot be used" in errors[0]
    with pytest.raises(PatternError):
        exact_regex(r"(a)\1")


def test_policy_hash_changes_with_any_rule_and_not_with_spelling() -> None:
    spelled, _ = _parse("network: {ports: [443]}\n")

    assert spelled is not None and spelled.content_hash == DEFAULT.content_hash
    assert Policy(network=NetworkPolicy(ports=[80])).content_hash != DEFAULT.content_hash


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("out/report.txt", None),
        (".", None),
        ("a//b/./c", None),
        (".gitignore", None),
        ("notes/.git-notes", None),
        ("../x", "filesystem.workspace"),
        ("a/b/../../..", "filesystem.workspace"),
        ("a/..", "filesystem.workspace"),
        ("/etc/passwd", "filesystem.workspace"),
        ("a\x00b", "filesystem.workspace"),
        (".git", "filesystem.denied"),
        ("./.git/config", "filesystem.denied"),
        ("x//y/.git/HEAD", "filesystem.denied"),
        ("config/.env", "filesystem.denied"),
        (".rustchain/store.db", "filesystem.denied"),
    ],
)
def test_paths_are_judged_lexically(path: str, rule: str | None) -> None:
    refusal = check_path(DEFAULT, path)

    assert (refusal.rule if refusal else None) == rule


def test_read_only_paths_refuse_writes_and_allow_reads() -> None:
    policy = Policy(
        filesystem=FilesystemPolicy(denied_paths=[], read_only_paths=["src", "docs/*.md"])
    )

    assert check_path(policy, "src/main.py") is None
    refusal = check_path(policy, "./src//main.py", write=True)
    assert refusal is not None and refusal.rule == "filesystem.read_only"
    assert check_path(policy, "docs/a.md", write=True) is not None
    assert check_path(policy, "docs/sub/a.md", write=True) is None  # `*` stays in one segment
    assert check_path(policy, "docs/a.txt", write=True) is None
    assert check_path(policy, "srcs/x", write=True) is None


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("https://httpbin.org/get", None),
        ("https://api.example.com:443/v1?q=a#top", None),
        ("https://user@example.com/", None),
        ("http://example.com/", "network.scheme"),
        ("HTTPS://example.com/", "network.url"),
        ("https://example.com:8443/", "network.port"),
        ("https://localhost/", "network.host"),
        ("https://LocalHost./", "network.url"),
        ("https://127.0.0.1/", "network.host"),
        ("https://169.254.169.254/latest/meta-data", "network.host"),
        ("https://metadata.google.internal/", "network.host"),
        ("https://172.20.1.1/", "network.host"),
        ("https://192.168.1.1/", "network.host"),
        ("https://[::1]/", "network.host"),
        ("https://example.com@10.0.0.1/", "network.host"),
        # Numeric spellings are judged as the address they name (WHATWG and inet_aton agree)...
        ("https://2130706433/", "network.host"),
        ("https://0x7f.1/", "network.host"),
        ("https://0xa9fea9fe/latest/meta-data", "network.host"),
        ("https://0177.0.0.1/", "network.host"),
        ("https://127.1/", "network.host"),
        ("https://10.0.0.1./", "network.host"),
        ("https://0XA000001/", "network.host"),
        ("https://[::ffff:a9fe:a9fe]/", "network.host"),
        # A public address too must be written as itself: a spelling is refused as such.
        ("https://0x08080808/", "network.numeric_host"),
        ("https://134744072:443/", "network.url"),
        ("https://8.8.8.8./", "network.url"),
        ("https://1.2.3.08/", "network.url"),  # no address, and not a name either
        ("https://api.0x7f/", "network.numeric_host"),
        ("https://4294967296/", "network.url"),
        ("https://example.com\\@evil.com/", "network.url"),
        ("https://exa mple.com/", "network.url"),
        ("example.com/path", "network.url"),
    ],
)
def test_urls_are_parsed_once_and_judged_by_scheme_host_and_port(
    url: str, rule: str | None
) -> None:
    refusal = check_url(DEFAULT, url)

    assert (refusal.rule if refusal else None) == rule


@pytest.mark.parametrize(
    ("command", "args", "shell", "rule"),
    [
        ("echo", ["hello", "/etc/passwd"], False, None),
        ("cat", ["notes.txt"], False, None),
        ("chmod +x run.sh", [], False, None),
        ("find", ["src", "-name", "*.py"], False, None),
        ("rm", ["-rf", "build"], False, "command.program"),
        ("/bin/cat", ["x"], False, "command.program"),
        ("   ", [], False, "command.program"),
        ("cat", ["/etc/passwd"], False, "command.argument"),
        ("cat", ["--file=/etc/passwd"], False, "command.argument"),
        ("cat", ["a/../../b"], False, "command.argument"),
        ("cat", ["~/.ssh/id_rsa"], False, "command.argument"),
        ("cat ../secret", [], False, "command.argument"),
        ("echo x/../../bin/rm", [], False, "command.argument"),
        ("ls | wc -l", [], True, "command.shell"),
    ],
)
def test_commands_are_judged_by_program_and_arguments(
    command: str, args: list[str], shell: bool, rule: str | None
) -> None:
    refusal = check_command(DEFAULT, command, args, shell)

    assert (refusal.rule if refusal else None) == rule


def test_models_tools_tokens_and_flows_have_runtime_checks_too() -> None:
    policy = default_policy().model_copy(deep=True)
    strict = Policy.model_validate(
        {
            "llm": {"allowed_models": ["phi3:*"], "max_tokens_per_step": 100},
            "tools": {"denied_tools": ["shell"]},
            "data_flow": {"allow": [{"from": "llm", "to": "path"}]},
        }
    )

    assert check_model(policy, "gpt-4") is None
    assert check_model(strict, "phi3:mini") is None
    assert check_model(strict, "gpt-4") is not None
    assert check_tool(strict, "shell") is not None and check_tool(strict, "csv") is None
    assert check_tokens(strict, 100) is None and check_tokens(strict, 101) is not None
    assert check_data_flow(strict, "llm", Sink.PATH_WRITE) is None
    assert check_data_flow(strict, "llm", Sink.URL) is not None
    assert check_data_flow(strict, "read_file", Sink.ARGUMENT) is None


def test_environment_variables_that_change_what_runs_are_refused() -> None:
    assert check_environment(DEFAULT, "LANG") is None
    for name in ("PATH", "LD_PRELOAD", "PYTHONPATH", "BASH_ENV", "GIT_SSH_COMMAND"):
        refusal = check_environment(DEFAULT, name)
        assert refusal is not None and refusal.rule == "command.environment"


def test_globs_are_case_sensitive_unless_asked_and_star_stops_where_told() -> None:
    assert glob("*.md", "/").matches("a.md") and not glob("*.md", "/").matches("a/b.md")
    assert glob("**/.git", "/").matches(".git") and glob("**/.git", "/").matches("a/b/.git")
    assert glob("LocalHost", ignore_case=True).matches("localhost")
    assert not glob("LocalHost").matches("localhost")
