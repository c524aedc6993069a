"""The verifier's use case: a mission file and a policy in, a verdict out."""

from __future__ import annotations

from dataclasses import dataclass

from rustchain.domain.compiler import Compilation
from rustchain.domain.policy import Policy
from rustchain.domain.verdict import Verdict
from rustchain.platform.mission_files import compile_file
from rustchain.steps import constraint_generators, default_registry
from rustchain.verifier.engine import verify_plan
from rustchain.verifier.settings import VerifierSettings


@dataclass(frozen=True)
class FileVerification:
    """The compilation of a mission file and, when it compiled, its verdict."""

    compilation: Compilation
    verdict: Verdict | None


def verify_file(
    path: str, policy: Policy, settings: VerifierSettings | None = None
) -> FileVerification:
    """Compile a mission file and verify its plan against the policy."""
    compilation = compile_file(path, default_registry())
    if compilation.plan is None:
        return FileVerification(compilation, None)
    verdict = verify_plan(compilation.plan, policy, constraint_generators(), settings)
    return FileVerification(compilation, verdict)
