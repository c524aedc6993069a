"""Each policy rule as the language of the values that break it, per kind of sink.

A sink is where a step hands a text to the outside world: a program, an argument, a path, a URL,
a model or a tool name. The verifier asks Z3 whether a symbolic value can fall in a rule's
language; `policy_checks` asks the same of concrete values at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rustchain.domain.network_hosts import NONCANONICAL_HOST
from rustchain.domain.policy import Policy, SinkCategory
from rustchain.domain.policy_patterns import WHITE_SPACE, any_glob, exact_regex, glob
from rustchain.domain.policy_regex import (
    ANYTHING,
    Lang,
    char_set,
    complement,
    concat,
    intersect,
    literal,
    optional,
    plus,
    star,
    union,
)
from rustchain.domain.policy_urls import (
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
}


@dataclass(frozen=True, eq=False)
class Rule:
    """A rule as the language of the values that break it."""

    id: str
    language: Lang
    explanation: str


_WS = char_set(WHITE_SPACE)
_WORD = plus(char_set(WHITE_SPACE, negate=True))
_SLASH = literal("/")
# Lexically, `a//b` and `a/./b` are `a/b`: separators absorb empty and `.` segments.
_SEP = concat(_SLASH, star(union(_SLASH, literal("./"))))
_START = star(union(_SLASH, literal("./")))
_END = star(union(_SLASH, literal("/.")))
_NOT_SLASH = char_set("/", negate=True)
# A real segment: neither empty nor `.` (written without complement, which solvers find costly).
_SEGMENT = union(
    concat(char_set("/.", negate=True), star(_NOT_SLASH)), concat(literal("."), plus(_NOT_SLASH))
)


def path_prefix(pattern: str) -> Lang:
    """Workspace paths that are, or are under, what the glob names (lexically canonical)."""
    segments = [s for s in pattern.split("/") if s not in ("", ".")]
    body: list[Lang] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            body.append(ANYTHING if last else optional(concat(ANYTHING, _SEP)))
            continue
        pattern_part = glob(segment, "/")
        wild = "*" in segment or "?" in segment
        body.append(intersect(pattern_part, _SEGMENT) if wild else pattern_part)
        if not last:
            body.append(_SEP)
    return concat(_START, *body, union(_END, concat(_SEP, ANYTHING)))


def first_word(command: str) -> str:
    """The program of a command line: its first word (split at ASCII white space)."""
    stripped = command.lstrip(WHITE_SPACE)
    end = 0
    while end < len(stripped) and stripped[end] not in WHITE_SPACE:
        end += 1
    return stripped[:end]


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

    @staticmethod
    def _build(policy: Policy) -> dict[Sink, tuple[Rule, ...]]:
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
            concat(star(_WS), _WORD, _WS, ANYTHING, _SLASH, ANYTHING),
            "has a '/' after the program; pass paths in 'args'",
        )
        parent = Rule(
            "filesystem.workspace",
            concat(
                optional(concat(ANYTHING, _SLASH)),
                literal(".."),
                optional(concat(_SLASH, ANYTHING)),
            ),
            "may leave the workspace through a '..' segment",
        )
        absolute = Rule(
            "filesystem.workspace",
            union(concat(_SLASH, ANYTHING), concat(ANYTHING, literal("\x00"), ANYTHING)),
            "may leave the workspace as an absolute path",
        )
        denied = Rule(
            "filesystem.denied",
            union(*(path_prefix(p) for p in fs.denied_paths)),
            "may reach a path the policy denies",
        )
        read_only = Rule(
            "filesystem.read_only",
            union(*(path_prefix(p) for p in fs.read_only_paths)),
            "may write to a read-only path",
        )
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
        path_rules = (parent, absolute, denied)
        tools = policy.tools
        return {
            Sink.COMMAND_LINE: (program_rule, inline_argument, inline_slash),
            Sink.ARGUMENT: (
                Rule("command.argument", bad_argument, "passes an argument the policy denies"),
            ),
            Sink.SHELL: (
                (program_rule,)
                if cmd.allow_shell
                else (
                    Rule(
                        "command.shell", ANYTHING, "runs through a shell, which the policy forbids"
                    ),
                )
            ),
            Sink.PATH_READ: path_rules,
            Sink.PATH_WRITE: (*path_rules, read_only),
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
                    any_glob(cmd.denied_environment),
                    "sets an environment variable the policy denies",
                ),
            ),
            Sink.TOOL: (
                Rule(
                    "tools.allowed",
                    union(complement(any_glob(tools.allowed_tools)), any_glob(tools.denied_tools)),
                    "may call a tool the policy does not allow",
                ),
            ),
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
