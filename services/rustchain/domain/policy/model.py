"""A tenant's policy: what its missions may run, touch, reach and spend (one YAML file per tenant).

Every field has the documented default, so a tenant's file states only where it differs, and an
empty file is the default policy. Patterns are checked when the policy is read: a pattern that
could not be decided exactly is an error there, not a surprise at verification.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from rustchain.domain.language.diagnostics import DiagnosticSink
from rustchain.domain.language.model_errors import validate_node
from rustchain.domain.language.source import NodeKind
from rustchain.domain.language.yaml_reader import read_source
from rustchain.domain.plans.plan import canonical_json
from rustchain.domain.policy.data import DatabaseGrant, EmbeddingsPolicy, RedisPolicy
from rustchain.domain.policy.patterns import PatternError, any_glob, exact_regex
from rustchain.domain.policy.program_models import MODELS
from rustchain.domain.policy.remote import FtpPolicy, SshPolicy
from rustchain.domain.policy.toolchains import ToolchainPolicy

# Validators built on first use: every step type imports the policy's rules, but only the verbs
# that verify or run a mission read a policy.
_SECTION = ConfigDict(strict=True, extra="forbid", frozen=True, defer_build=True)
Glob = Annotated[str, Field(min_length=1)]
AbsoluteGlob = Annotated[str, Field(min_length=2, pattern=r"^/")]
SinkCategory = Literal["command", "path", "url"]


class CommandLimits(BaseModel):
    """Operating-system limits on each command a step runs (and every process it starts)."""

    model_config = _SECTION
    cpu_seconds: Annotated[int, Field(ge=1)] = 600
    memory_mb: Annotated[int, Field(ge=16)] = 2048
    processes: Annotated[int, Field(ge=1)] = 256
    file_size_mb: Annotated[int, Field(ge=1)] = 1024
    open_files: Annotated[int, Field(ge=16)] = 1024


class CommandPolicy(BaseModel):
    """Which programs a `command` step may run and which arguments it may never pass."""

    model_config = _SECTION
    # Programs allowed without a model of their options (see docs/verifier.md): the verifier
    # cannot tell which of their arguments run programs or name files. Every allowed program
    # that has no model, and every allowed glob, must be listed here, as written there.
    unmodelled_programs: list[Glob] = Field(default_factory=list)
    allowed_programs: list[Glob] = Field(
        default_factory=lambda: [
            *("echo", "printf", "date", "pwd", "ls", "dir", "cat", "head", "tail", "wc"),
            *("sort", "uniq", "cut", "tr", "grep", "find", "diff", "mkdir", "touch"),
            *("cp", "mv", "chmod", "true", "false"),
        ]
    )
    denied_programs: list[Glob] = Field(default_factory=list)
    # Programs that only print their arguments: argument rules do not apply to them.
    text_only_programs: list[Glob] = Field(default_factory=lambda: ["echo", "printf"])
    denied_arguments: list[str] = Field(
        default_factory=lambda: [
            r"(.*=)?/.*",  # an absolute path, also as --option=/path
            r"(.*[=/])?\.\.(/.*)?",  # a parent-directory segment
            r"(.*=)?~.*",  # a home directory
        ]
    )
    allow_shell: bool = False
    # Whether a command may run when the executor has no OS sandbox (bubblewrap or Landlock):
    # `optional` runs it unconfined, which is unsafe and says so.
    sandbox: Literal["required", "optional"] = "required"
    # The environment variables a step may set (an allowlist: a name matching none is refused).
    allowed_environment: list[Glob] = Field(
        default_factory=lambda: [
            *("LANG", "LC_*", "TZ", "TERM", "COLUMNS", "NO_COLOR", "FORCE_COLOR", "CI"),
            *("DEBUG", "VERBOSE", "LOG_LEVEL", "RUST_LOG", "RUST_BACKTRACE", "NODE_ENV"),
            *("APP_*", "MISSION_*"),
        ]
    )
    # Hosts (globs, any case) a command may reach, only through the executor's egress proxy, on
    # `network.ports`, after name resolution against `network.denied_hosts`; none: no network.
    network_hosts: list[Glob] = Field(default_factory=list)
    limits: CommandLimits = Field(default_factory=CommandLimits)
    # The most standard output a step may ask to keep (its `max_output_bytes`): an output over
    # the inline size is stored as an artifact of the tenant, so this bounds that storage.
    max_output_bytes: Annotated[int, Field(ge=1)] = 512 * 1024
    # The most background programs (process_start) one mission may run at once; the verifier
    # refuses a mission with more process_start steps than this, the executor counts again.
    max_background_processes: Annotated[int, Field(ge=0)] = 4
    # Environment variables a step may not set: they would change which program runs, or how.
    denied_environment: list[Glob] = Field(
        default_factory=lambda: [
            *("PATH", "LD_*", "DYLD_*", "PYTHON*", "PERL5*", "RUBY*", "NODE_OPTIONS"),
            *("BASH_ENV", "ENV", "IFS", "SHELLOPTS", "HOME", "GIT_*"),
            *("GCONV_PATH", "LOCPATH", "TMPDIR", "GLIBC_TUNABLES", "BASH_FUNC_*", "NLSPATH"),
        ]
    )

    @field_validator("allowed_programs")
    @classmethod
    def _modelled(cls, programs: list[str], info: ValidationInfo) -> list[str]:
        unmodelled = info.data.get("unmodelled_programs", [])
        listed = any_glob(unmodelled)
        missing = [
            p
            for p in programs
            if p not in MODELS
            and p not in unmodelled
            and ("*" in p or "?" in p or not listed.matches(p))
        ]
        if missing:
            names = ", ".join(repr(p) for p in missing)
            raise ValueError(
                f"allowed programs without a model: {names}; the verifier cannot tell what "
                "their arguments do. Allow them knowingly by listing them, as written, in "
                "'commands.unmodelled_programs', or remove them"
            )
        return programs

    @field_validator("denied_arguments")
    @classmethod
    def _exact(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                exact_regex(pattern)
            except (PatternError, ValueError) as error:
                raise ValueError(f"pattern {pattern!r} cannot be used: {error}") from None
        return patterns


class FilesystemPolicy(BaseModel):
    """Paths are relative to the mission's workspace; these globs deny or protect parts of it."""

    model_config = _SECTION
    denied_paths: list[Glob] = Field(default_factory=lambda: ["**/.git", ".rustchain", "**/.env"])
    read_only_paths: list[Glob] = Field(default_factory=list)
    # Folders a mission may name as its workspace (`config.workspace`); none by default, so each
    # mission gets a fresh one of its own.
    mission_workspaces: list[Glob] = Field(default_factory=list)
    # The folders on the executor's machine such a workspace may resolve to (absolute globs, `*`
    # within one folder name, `**` across them); none: wherever the client resolved it.
    workspace_roots: list[AbsoluteGlob] = Field(default_factory=list)

    def allows_mission_workspace(self, workspace: str) -> bool:
        """Whether a mission may name this `config.workspace` (the verifier's rule, and the
        executor's check of the workspace it is handed)."""
        return any_glob(self.mission_workspaces).matches(workspace)

    def allows_workspace_folder(self, folder: str) -> bool:
        """Whether a named workspace may be this folder (absolute, symbolic links resolved)."""
        return not self.workspace_roots or any_glob(self.workspace_roots, "/").matches(folder)


class NetworkPolicy(BaseModel):
    """Where `http` steps may connect: schemes, hosts (globs, any case) and ports."""

    model_config = _SECTION
    schemes: list[Glob] = Field(default_factory=lambda: ["https"])
    allowed_hosts: list[Glob] = Field(default_factory=lambda: ["*"])
    denied_hosts: list[Glob] = Field(
        default_factory=lambda: [
            *("localhost", "*.localhost", "*.local", "*.internal", "metadata"),
            *("0.*", "10.*", "127.*", "169.254.*", "192.168.*", "100.100.100.200"),
            *(f"172.{n}.*" for n in range(16, 32)),
            "[*",  # every IPv6 literal: loopback, link-local and private ones included
        ]
    )
    ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(default_factory=lambda: [443])
    # The largest response body an `http` step may ask to read (its `max_response_bytes`): the
    # body is its output, recorded in one bounded event.
    max_response_bytes: Annotated[int, Field(ge=1)] = 512 * 1024


class LlmPolicy(BaseModel):
    """Which models may be asked, and how many tokens a step and a mission may spend."""

    model_config = _SECTION
    allowed_models: list[Glob] = Field(default_factory=lambda: ["*"])
    max_tokens_per_step: Annotated[int, Field(ge=1)] = 4096
    max_tokens_per_mission: Annotated[int, Field(ge=1)] = 200_000
    default_max_tokens: Annotated[int, Field(ge=1)] = 1024


class ToolPolicy(BaseModel):
    """Which tools `tool` and `agent` steps may call."""

    model_config = _SECTION
    allowed_tools: list[Glob] = Field(default_factory=lambda: ["*"])
    denied_tools: list[Glob] = Field(default_factory=list)


class LimitsPolicy(BaseModel):
    """Bounds on a whole mission: size, parallelism and the longest path through it."""

    model_config = _SECTION
    max_steps: Annotated[int, Field(ge=1)] = 10_000
    max_parallel_steps: Annotated[int, Field(ge=1)] = 64
    max_mission_seconds: Annotated[float, Field(gt=0)] = 4 * 3600


class FlowAllowance(BaseModel):
    """Output of one untrusted step type that may reach one kind of sink."""

    model_config = ConfigDict(
        strict=True, extra="forbid", frozen=True, populate_by_name=True, defer_build=True
    )
    source: Annotated[str, Field(min_length=1, alias="from")]
    sink: SinkCategory = Field(alias="to")


class DataFlowPolicy(BaseModel):
    """Output of untrusted steps may not reach a command, a file path or a URL, unless allowed."""

    model_config = _SECTION
    untrusted_step_types: list[str] = Field(
        # What a remote server sends is as untrusted as an http body (stepsc: websocket, ssh).
        default_factory=lambda: [
            *("http", "llm", "tool", "agent", "chain"),
            *("websocket_connect", "ssh_execute"),
        ]
    )
    allow: list[FlowAllowance] = Field(default_factory=list)
    # Where a `{secrets.NAME}` value may go besides http headers and bodies, llm and tool
    # settings and a command's environment: a command line, a file path or a URL only if listed.
    secrets_to: list[SinkCategory] = Field(default_factory=list)

    def allows(self, source_step_type: str, sink: SinkCategory) -> bool:
        """Whether output of that step type may reach that kind of sink."""
        if source_step_type not in self.untrusted_step_types:
            return True
        return any(a.source == source_step_type and a.sink == sink for a in self.allow)


class Policy(BaseModel):
    """One tenant's policy; every section defaults to the documented default policy."""

    model_config = _SECTION
    name: Annotated[str, Field(min_length=1)] = "default"
    description: str | None = None
    commands: CommandPolicy = Field(default_factory=CommandPolicy)
    filesystem: FilesystemPolicy = Field(default_factory=FilesystemPolicy)
    network: NetworkPolicy = Field(default_factory=NetworkPolicy)
    llm: LlmPolicy = Field(default_factory=LlmPolicy)
    tools: ToolPolicy = Field(default_factory=ToolPolicy)
    limits: LimitsPolicy = Field(default_factory=LimitsPolicy)
    data_flow: DataFlowPolicy = Field(default_factory=DataFlowPolicy)
    # Machines steps log in to (stepsc: ssh_execute, ftp_upload, ftp_download); none by default.
    ssh: SshPolicy = Field(default_factory=SshPolicy)
    ftp: FtpPolicy = Field(default_factory=FtpPolicy)
    toolchains: ToolchainPolicy = Field(default_factory=ToolchainPolicy)
    # Data services (policy_data): none granted by default.
    databases: list[DatabaseGrant] = Field(default_factory=list)
    redis: RedisPolicy = Field(default_factory=RedisPolicy)
    embeddings: EmbeddingsPolicy = Field(default_factory=EmbeddingsPolicy)

    @property
    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON of the policy: what a verdict was proven against."""
        document = self.model_dump(mode="json", by_alias=True)
        return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


def parse_policy(data: bytes, file: str, sink: DiagnosticSink) -> Policy | None:
    """A policy from a YAML (or JSON) file's bytes; errors go to the sink as FILE:LINE:COL."""
    if not data.strip():
        return Policy()
    document = read_source(data, file, sink)
    if document is None:
        return None
    root = document.root
    if root.kind is not NodeKind.MAPPING:
        sink.error(root.position, "a policy is a mapping with sections such as 'commands'")
        return None
    return validate_node(Policy, root.to_plain(), root, sink, "the policy")
