"""Reading policies: the default one shipped with the package, or a tenant's file."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from rustchain.domain.events.names import validate_tenant
from rustchain.domain.language.diagnostics import START, Diagnostic, DiagnosticSink, Severity
from rustchain.domain.policy.model import Policy, parse_policy

DEFAULT_POLICY_FILE = "default_policy.yaml"


class PolicyFileError(ValueError):
    """A policy file that cannot be used; `diagnostics` say where and why."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("\n".join(d.render() for d in diagnostics))
        self.diagnostics = diagnostics


def default_policy_text() -> bytes:
    """The default policy file's bytes, as shipped."""
    return resources.files("rustchain.verifier").joinpath(DEFAULT_POLICY_FILE).read_bytes()


def _parse(data: bytes, name: str) -> Policy:
    sink = DiagnosticSink(name)
    policy = parse_policy(data, name, sink)
    if policy is None or sink.has_errors:
        raise PolicyFileError(sink.sorted())
    return policy


def default_policy() -> Policy:
    """The documented default policy."""
    return _parse(default_policy_text(), DEFAULT_POLICY_FILE)


def load_policy(path: str | None) -> Policy:
    """The policy in a file, or the default policy when no file is named."""
    if path is None:
        return default_policy()
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        reason = error.strerror or str(error)
        diagnostic = Diagnostic(path, START, Severity.ERROR, f"cannot read the policy: {reason}")
        raise PolicyFileError([diagnostic]) from None
    return _parse(data, path)


POLICIES_FOLDER = "policies"


class TenantPolicies:
    """Each tenant's policy: `<folder>/<tenant>.yaml` when it exists, else the default policy.

    A file is read again when it changes, so a platform team can tighten a policy without a
    restart; a broken file refuses that tenant's missions (PolicyFileError), never loosens them.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._default = default_policy()
        self._cache: dict[str, tuple[int, Policy]] = {}

    def __call__(self, tenant: str) -> Policy:
        """The policy that applies to the tenant now."""
        path = self.folder / f"{validate_tenant(tenant)}.yaml"
        try:
            changed = path.stat().st_mtime_ns
        except FileNotFoundError:
            return self._default
        cached = self._cache.get(tenant)
        if cached is not None and cached[0] == changed:
            return cached[1]
        policy = load_policy(str(path))
        self._cache[tenant] = (changed, policy)
        return policy
