"""Reading a suite folder: `suite.yaml` and the mission file it names beside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rustchain.domain.language.diagnostics import START, Diagnostic, DiagnosticSink, Severity
from rustchain.domain.training.suite import Suite, parse_suite

SUITE_FILE = "suite.yaml"
MAX_SUITE_BYTES = 4 * 1024 * 1024


class SuiteFileError(ValueError):
    """A suite that cannot be used; `diagnostics` say where and why."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("\n".join(d.render() for d in diagnostics))
        self.diagnostics = diagnostics


@dataclass(frozen=True)
class LoadedSuite:
    """A suite and the path of its mission file."""

    suite: Suite
    folder: Path
    mission_file: Path


def _fail(file: str, message: str) -> SuiteFileError:
    return SuiteFileError([Diagnostic(file, START, Severity.ERROR, message)])


def load_suite(folder: str | Path) -> LoadedSuite:
    """The suite in a folder (or a suite file named directly), its mission beside it."""
    path = Path(folder)
    file = path / SUITE_FILE if path.is_dir() else path
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_SUITE_BYTES + 1)
    except OSError as error:
        raise _fail(str(file), f"cannot read the suite: {error.strerror or error}") from None
    if len(data) > MAX_SUITE_BYTES:
        raise _fail(str(file), f"the suite is larger than {MAX_SUITE_BYTES} bytes")
    sink = DiagnosticSink(str(file))
    suite = parse_suite(data, str(file), sink)
    if suite is None or sink.has_errors:
        raise SuiteFileError(sink.sorted())
    base = file.parent.resolve()
    mission = (base / suite.mission).resolve()
    if not mission.is_relative_to(base):
        raise _fail(str(file), f"mission '{suite.mission}' is outside the suite's folder")
    if not mission.is_file():
        raise _fail(str(file), f"mission '{suite.mission}' does not exist beside the suite")
    return LoadedSuite(suite, base, mission)
