"""Each policy rule as the language of the values that break it, per kind of sink.

A sink is where a step hands a text to the outside world: a program, an argument, a path, a URL,
a model or a tool name. The verifier asks Z3 whether a symbolic value can fall in a rule's
language; `policy_checks` asks the same of concrete values at run time.
"""

from __future__ import annotations

from enum import StrEnum

from rustchain.domain.policy.command_rules import CommandRules
from rustchain.domain.policy.data_rules import data_rules
from rustchain.domain.policy.git_refs import GIT_BRANCH_RULE
from rustchain.domain.policy.languages import WORD as _WORD
from rustchain.domain.policy.languages import WS as _WS
from rustchain.domain.policy.languages import Rule, first_word, path_rules
from rustchain.domain.policy.model import Policy, SinkCategory
from rustchain.domain.policy.network_hosts import NONCANONICAL_HOST
from rustchain.domain.policy.patterns import any_glob, exact_regex, glob
from rustchain.domain.policy.regex import (
    ANYTHING,
    complement,
    concat,
    intersect,
    literal,
    optional,
    star,
    union,
)
from rustchain.domain.policy.remote_rules import remote_rules
from rustchain.domain.policy.urls import (
    LOOSE_HOST,
    LOOSE_PORT,
    URL_PARTS,
    loose_url,
    url_language,
)


class Sink(StrEnum):
    """What a step does with a text it was given."""

    COMMAND_LINE = "command_line"  # a `command` without shell: program, then words
    ARGUMENT = "argument"
    SHELL = "shell"
    PATH_READ = "path_read"
    PATH_WRITE = "path_write"
    URL = "url"
    MODEL = "model"
    TOOL = "tool"
    ENVIRONMENT = "environment"
    # stepsc: hosts reached by name and port, logins, remote commands (policy_remote_rules).
    NETWORK_HOST = "network_host"
    NETWORK_PORT = "network_port"
    SSH_HOST = "ssh_host"
    SSH_PORT = "ssh_port"
    SSH_USER = "ssh_user"
    SSH_COMMAND = "ssh_command"
    FTP_HOST = "ftp_host"
    FTP_PORT = "ftp_port"
    FTP_USER = "ftp_user"
    FTP_PLAIN = "ftp_plain"
    CREDENTIAL = "credential"
    GIT_BRANCH = "git_branch"  # a branch name given to git
    TOOLCHAIN = "toolchain"  # a language whose toolchain a code step runs
    # Data services (policy_data_rules): a grant's name, `DATABASE/KIND`, `SERVER/KEY`, a model.
    DATABASE = "database"
    SQL_STATEMENT = "sql_statement"
    REDIS_SERVER = "redis_server"
    REDIS_KEY = "redis_key"
    REDIS_WRITE = "redis_write"
    EMBEDDING_MODEL = "embedding_model"


DATA_SINKS = (
    *(Sink.DATABASE, Sink.SQL_STATEMENT, Sink.REDIS_SERVER, Sink.REDIS_KEY, Sink.REDIS_WRITE),
    Sink.EMBEDDING_MODEL,
)

SINK_CATEGORY: dict[Sink, SinkCategory | None] = {
    Sink.COMMAND_LINE: "command",
    Sink.ARGUMENT: "command",
    Sink.SHELL: "command",
    Sink.PATH_READ: "path",
    Sink.PATH_WRITE: "path",
    Sink.URL: "url",
    Sink.MODEL: None,
    Sink.TOOL: None,
    Sink.ENVIRONMENT: None,
    # stepsc: a host is where a connection goes, like a URL; a remote command is a command.
    Sink.NETWORK_HOST: "url",
    Sink.NETWORK_PORT: None,
    Sink.SSH_HOST: "url",
    Sink.SSH_PORT: None,
    Sink.SSH_USER: None,
    Sink.SSH_COMMAND: "command",
    Sink.FTP_HOST: "url",
    Sink.FTP_PORT: None,
    Sink.FTP_USER: None,
    Sink.FTP_PLAIN: None,
    Sink.CREDENTIAL: None,
    Sink.GIT_BRANCH: "command",
    Sink.TOOLCHAIN: "command",
    **{sink: None for sink in DATA_SINKS},
}


class CompiledPolicy:
    """A policy's rules as languages, per sink; built once per policy and shared."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.hash = policy.content_hash
        self._rules = self._build(policy)
        self._text_only = any_glob(policy.commands.text_only_programs)

    def prints_only(self, command: str) -> bool:
        """Whether the command's program only prints its arguments (argument rules skip it)."""
        return self._text_only.matches(first_word(command))

    def rules(self, sink: Sink) -> tuple[Rule, ...]:
        """The rules a value given to this sink must not break, in the order they are checked."""
        return self._rules[sink]

    def _build(self, policy: Policy) -> dict[Sink, tuple[Rule, ...]]:
        cmd, fs, net = policy.commands, policy.filesystem, policy.network
        bad_program = union(
            complement(any_glob(cmd.allowed_programs)), any_glob(cmd.denied_programs)
        )
        program_rule = Rule(
            "command.program",
            union(
                star(_WS),
                concat(star(_WS), intersect(_WORD, bad_program), optional(concat(_WS, ANYTHING))),
            ),
            "runs a program the policy does not allow",
        )
        bad_argument = union(*(exact_regex(p) for p in cmd.denied_arguments))
        argument_rule = Rule(
            "command.argument", bad_argument, "passes an argument the policy denies"
        )
        inline_argument = Rule(
            "command.argument",
            concat(
                star(_WS),
                _WORD,
                _WS,
                optional(concat(ANYTHING, _WS)),
                intersect(_WORD, bad_argument),
                optional(concat(_WS, ANYTHING)),
            ),
            "passes an argument the policy denies",
        )
        # Without a shell the runner may take the whole text as the program's path: a later word
        # with '/' could name a file of the workspace, so words after the first carry none.
        inline_slash = Rule(
            "command.argument",
            concat(star(_WS), _WORD, _WS, ANYTHING, literal("/"), ANYTHING),
            "has a '/' after the program; pass paths in 'args'",
        )
        paths = path_rules(fs.denied_paths, fs.read_only_paths)
        self.commands = CommandRules(policy, argument_rule, paths)
        scheme, host, port = (
            URL_PARTS["scheme"],
            URL_PARTS["host"],
            optional(concat(literal(":"), URL_PARTS["port"])),
        )
        bad_host = union(
            complement(any_glob(net.allowed_hosts)),
            any_glob(net.denied_hosts),
        )
        allowed_ports = union(*(literal(str(p)) for p in net.ports))
        url_rules = (
            Rule(
                "network.url",
                complement(url_language(scheme, host, port)),
                "may not be a well-formed URL",
            ),
            Rule(
                "network.scheme",
                url_language(
                    intersect(scheme, complement(union(*(glob(s) for s in net.schemes)))),
                    host,
                    port,
                ),
                "may use a scheme the policy does not allow",
            ),
            Rule(
                "network.host",
                loose_url(intersect(LOOSE_HOST, bad_host), LOOSE_PORT),
                "may reach a host the policy denies (private, link-local, metadata or not allowed)",
            ),
            Rule(
                "network.numeric_host",
                loose_url(intersect(LOOSE_HOST, NONCANONICAL_HOST), LOOSE_PORT),
                "may spell an IP address other than as the address itself (hex, octal, a bare "
                "number, a short form, an IPv4-mapped or uncompressed IPv6 address), which host "
                "rules cannot judge before it is known",
            ),
            Rule(
                "network.port",
                loose_url(
                    LOOSE_HOST,
                    concat(literal(":"), intersect(URL_PARTS["port"], complement(allowed_ports))),
                ),
                "may use a port the policy does not allow",
            ),
        )
        tools = policy.tools
        return {
            Sink.COMMAND_LINE: (
                program_rule,
                inline_argument,
                inline_slash,
                *self.commands.line_rules(),
            ),
            Sink.ARGUMENT: (argument_rule,),
            Sink.SHELL: (
                (program_rule,)
                if cmd.allow_shell
                else (
                    Rule(
                        "command.shell", ANYTHING, "runs through a shell, which the policy forbids"
                    ),
                )
            ),
            Sink.PATH_READ: paths.read,
            Sink.PATH_WRITE: (*paths.read, paths.read_only),
            Sink.URL: url_rules,
            Sink.MODEL: (
                Rule(
                    "llm.model",
                    complement(any_glob(policy.llm.allowed_models)),
                    "may ask a model the policy does not allow",
                ),
            ),
            Sink.ENVIRONMENT: (
                Rule(
                    "command.environment",
                    union(
                        complement(any_glob(cmd.allowed_environment)),
                        any_glob(cmd.denied_environment),
                    ),
                    "sets an environment variable the policy does not allow "
                    "(commands.allowed_environment, commands.denied_environment)",
                ),
            ),
            Sink.GIT_BRANCH: (GIT_BRANCH_RULE,),
            Sink.TOOLCHAIN: (
                Rule(
                    "toolchains.allowed",
                    complement(union(*(literal(t) for t in policy.toolchains.allowed))),
                    "runs a toolchain the policy does not grant (toolchains.allowed)",
                ),
            ),
            Sink.TOOL: (
                Rule(
                    "tools.allowed",
                    union(complement(any_glob(tools.allowed_tools)), any_glob(tools.denied_tools)),
                    "may call a tool the policy does not allow",
                ),
            ),
            **{Sink(name): rules for name, rules in remote_rules(policy).items()},
            **{Sink(sink): rules for sink, rules in data_rules(policy).items()},
        }


_COMPILED: dict[str, CompiledPolicy] = {}


def compile_policy(policy: Policy) -> CompiledPolicy:
    """The compiled rules of a policy (cached by the policy's hash)."""
    key = policy.content_hash
    found = _COMPILED.get(key)
    if found is None:
        if len(_COMPILED) > 64:
            _COMPILED.clear()
        found = _COMPILED[key] = CompiledPolicy(policy)
    return found
