"""Reading mission files from disk for the verbs, within the reader's size limit."""

from __future__ import annotations

from pathlib import Path

from rustchain.domain.language.diagnostics import START, Diagnostic, Severity
from rustchain.domain.language.step_types import StepTypeRegistry
from rustchain.domain.language.yaml_reader import ReadLimits
from rustchain.domain.plans.compiler import Compilation, compile_mission


def compile_file(
    path: str, registry: StepTypeRegistry, limits: ReadLimits | None = None
) -> Compilation:
    """Compile a file; an unreadable file is reported like any other error in it."""
    limits = limits or ReadLimits()
    try:
        with Path(path).open("rb") as handle:
            # One byte over the limit is enough for the reader to say the file is too large.
            data = handle.read(limits.max_bytes + 1)
    except OSError as error:
        reason = error.strerror or str(error)
        diagnostic = Diagnostic(path, START, Severity.ERROR, f"cannot read the file: {reason}")
        return Compilation(path, [diagnostic], None, None)
    return compile_mission(data, path, registry, limits)
