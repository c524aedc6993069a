"""Writes docs/compatibility.md: how every RustChain mission file fares here.

Two corpora: the files of RustChain's repository (../shared/compat/rustchain-community/) and the
missions of its history (../shared/compat/rustchain-history/, with `expected.tsv` saying what
RustChain's own loader did with each). Run `python -m rustchain.tools.compat_report` after a change
to the mission language; a test fails while the page and the behaviour disagree.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from rustchain.domain.language.step_types import StepType, StepTypeRegistry
from rustchain.domain.plans.compiler import Compilation, compile_mission
from rustchain.steps import default_registry

ROOT = Path(__file__).resolve().parents[3]
SHARED = ROOT.parent / "shared" / "compat"
COMPAT = SHARED / "rustchain-community"
HISTORY = SHARED / "rustchain-history"
EXPECTED = HISTORY / "expected.tsv"
STEP_TYPES_REFERENCE = SHARED / "STEP_TYPES.md"
_SUMMARY_ROW = re.compile(r"^\| (\d+) \| `([a-z_]+)` \|", re.MULTILINE)
PAGE = ROOT / "docs" / "compatibility.md"

_INTRO = """# Compatibility with RustChain missions

Every mission file of RustChain's repository (../shared/compat/rustchain-community/, MIT) and of its
history (../shared/compat/rustchain-history/, with `expected.tsv` giving what RustChain's own loader
did with each) is loaded by `tests/unit/test_compatibility.py`; `tests/e2e/test_compat_runs.py` runs
them. This page is generated from the same results (`python -m rustchain.tools.compat_report`), so
the two cannot drift apart.

## Loading

What RustChain's loader accepted, and we accept too:
- `step_type` as a snake-case name (`create_file`), `Tool`, or `{type: ...}`. RustChain knew no
  other spelling; we also accept CamelCase (`CreateFile`) as our extension.
- Keys it does not know: serde ignored them, and real missions carry `tags`, `author`, `llm_config`,
  `max_parallel`, `config.timeout`... Each is a warning here, with the known key it looks like
  (`did you mean 'depends_on'?`), never an error. `rustchain validate --strict` makes every warning
  an error, for teams that want that.
- Parameters a step cannot run with (a missing `path`, `tool_name` instead of `tool`, `documents`
  instead of `content` in `rag_add`): RustChain's loader never looks inside `parameters`, and its
  runners fail such a step when it runs. Here too: the file loads with a warning naming the problem
  and the step fails when it runs (so `continue_on_error` missions that test this keep working).
- A plain YAML scalar where text is expected (`version: 1.0`, `id: 1`, `content: 42`) is read as
  the text written, as serde_yaml does for text fields. (For parameters RustChain treated such a
  value as absent; we read what was written.) JSON files keep JSON's types.
- Steps without `name` (RustChain's struct required it, yet its own `mission create` templates omit
  it): the name defaults to the step id. This is why some files RustChain refused load here.
- Text in braces that names no step or variable (`f"{message}"` in generated code, `{{ name }}`
  templates, `${shell}`) stays literal, as RustChain left it.

What we refuse, with a precise error:
- The legacy JSON shape (`config` instead of `parameters`, `dependencies`, `timeout`): RustChain's
  loader refused it too (`parameters` is a required field).
- Step types RustChain never had (`Policy`, `Safety`, `Audit`, `shell`...). RustChain step types not
  registered in this deployment are refused by name; the tables mark the files that load once they
  are ("loads once its step types land").
- A reference that would make a dependency cycle (below), naming the cycle.
"""


# Where RustChain's behaviour was a bug or a stub, and what its documentation promised instead.
DIFFERENCES: tuple[tuple[str, str], ...] = (
    (
        'A step whose dependency failed still runs (the "skip" result is overwritten).',
        "It is skipped, with the reason, unless the failed step has `continue_on_error`.",
    ),
    (
        "Independent steps run one at a time in a random order (hash-map order); "
        "`max_parallel_steps` is parsed and ignored.",
        "Independent steps start in file order, up to `max_parallel_steps` (default 4) at a time.",
    ),
    (
        "`{step1}` in a step that does not depend on `step1` works only if the random order "
        "happens to run `step1` first.",
        "The reference adds the dependency it implies, with a warning naming it; if that "
        "would close a cycle, an error names the cycle.",
    ),
    (
        "`{previous_result}` is the alphabetically first `*_response` variable.",
        "It is the output of the step's one dependency; with none or several, of the step "
        "written just before it (a dependency added with a warning if needed).",
    ),
    (
        "Only `create_file`'s `content` is templated; only `llm`, `agent`, `chain`, "
        "`rag_query` set variables.",
        "References work in every parameter text and read any earlier step's output.",
    ),
    (
        "Fixed placeholder outputs: `http` is Skipped, `llm`/`tool`/`agent`/`chain`/`rag_*` "
        'fail with "feature not enabled" in the shipped build; `rag_add`/`rag_query` use a '
        'fresh empty store each; `service_health` always fails ("Invalid address").',
        "Every step type registered here does what it says, for real; those not registered "
        "yet are refused by name, never accepted to do nothing.",
    ),
    (
        'A mission with failed steps prints "Mission completed successfully!" and exits 0.',
        "It is reported as failed and `rustchain run` exits non-zero.",
    ),
    (
        "A missing `working_dir` falls back to RustChain's own directory; `working_directory`"
        " is ignored.",
        "`working_dir` is honoured, beneath the workspace; `working_directory` is an alias.",
    ),
    (
        "`delete_file` of a missing file succeeds with `existed: false`.",
        "The same (`missing_ok: false` makes it an error).",
    ),
    (
        "`process_start` spawns the program unconfined and never kills or reaps it; its output is "
        "the host `pid`. `process_kill` runs `kill -9` on any `pid` it is given.",
        "`process_start` runs the program in the OS sandbox, returns an opaque `handle` (no pid),"
        " keeps its outputs in `process_logs/`, and the executor kills it when the mission ends. "
        "`process_kill` takes that `handle` and ends only a program of its own mission; `pid` is"
        " refused.",
    ),
    (
        "Unknown keys are silently ignored.",
        'Each is a warning with its "did you mean"; `validate --strict` refuses them.',
    ),
    (
        "Step paths are relative to RustChain's own directory and unconfined (`../shimmy/x.md`, "
        "`/tmp/x.txt`); `create_file` alone filters `..`, `~` and system folders.",
        "Every path is beneath the mission's workspace: one that may leave it is refused by the "
        "verifier, and again when the step runs.",
    ),
    (
        "A `command` with spaces (`cargo build`) fails to start; `&&`, `|`, `$`, `>` and words "
        "such as `format` are refused anywhere in it.",
        "A program line is split into words (`cargo build` runs `cargo`); shell syntax runs only "
        "with `shell: true` where the tenant's policy allows a shell.",
    ),
    (
        "A nested `chain` (`parameters.steps`) runs its sub-steps in order with a copy of the "
        "variables, stops at the first that fails, and yields an empty text.",
        "Its sub-steps become steps of the mission (ids from `step_name`), each after the one "
        "before, proven and contained like any step; the chain step ends after the last, and a "
        "failure skips the rest.",
    ),
)


class Outcome(StrEnum):
    """How a file of RustChain's history fares here, against what RustChain's loader did."""

    LOADS = "loads"
    AWAITS_STEP_TYPES = "loads once its step types land"
    REFUSED = "refused"
    ACCEPTED_SUPERSET = "accepted (a step without 'name')"
    UNEXPECTED = "**differs from RustChain**"


@dataclass(frozen=True)
class HistoryFile:
    """One file of `rustchain-history/` with RustChain's verdict and ours."""

    name: str
    rustchain_valid: bool
    compilation: Compilation
    outcome: Outcome


class _AnyParameters(BaseModel):
    """Stands for a step type not registered yet: any parameters."""

    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class _PendingStepType:
    """A RustChain step type this deployment refuses today, accepted for the what-if compile."""

    name: str
    summary: str = "not registered yet"
    parameters: type[BaseModel] = _AnyParameters


@functools.cache
def _registry() -> StepTypeRegistry:
    return default_registry()


@functools.cache
def _registry_with_pending_types() -> StepTypeRegistry:
    """The registry with every refused RustChain step type accepted: what loads once they land."""
    registry = _registry()
    pending: list[StepType] = [
        _PendingStepType(name) for name in registry.refused if name not in registry.types
    ]
    return StepTypeRegistry.of([*registry.types.values(), *pending], {})


def mission_files() -> list[Path]:
    """Every YAML or JSON mission file in RustChain's repository (not its JSON Schema)."""
    return sorted(
        p
        for p in COMPAT.rglob("*")
        if p.suffix in {".yaml", ".yml", ".json"} and p.name != "mission_format.schema.json"
    )


def compile_compat(path: Path) -> Compilation:
    """Compile one RustChain file, named relative to the repository root."""
    name = str(path.relative_to(COMPAT))
    return compile_mission(path.read_bytes(), name, _registry())


def _steps_without_name(compilation: Compilation) -> bool:
    mission = compilation.mission
    return mission is not None and any(step.name is None for step in mission.steps)


def _uses_refused_type(data: bytes, name: str) -> bool:
    pending = compile_mission(data, name, _registry_with_pending_types())
    return pending.plan is not None


def history_file(name: str, rustchain_valid: bool) -> HistoryFile:
    """Compile one file of RustChain's history and classify the result."""
    data = (HISTORY / name).read_bytes()
    compilation = compile_mission(data, name, _registry())
    loads = compilation.plan is not None
    if rustchain_valid and loads:
        outcome = Outcome.LOADS
    elif rustchain_valid and _uses_refused_type(data, name):
        outcome = Outcome.AWAITS_STEP_TYPES
    elif not rustchain_valid and not loads:
        outcome = Outcome.REFUSED
    elif not rustchain_valid and _steps_without_name(compilation):
        outcome = Outcome.ACCEPTED_SUPERSET
    else:
        outcome = Outcome.UNEXPECTED
    return HistoryFile(name, rustchain_valid, compilation, outcome)


def history_files() -> list[HistoryFile]:
    """Every file of RustChain's history, in `expected.tsv` order."""
    rows = [line.split("\t") for line in EXPECTED.read_text().splitlines() if line.strip()]
    return [history_file(name, verdict == "valid") for name, verdict, *_ in rows]


def refused_types_in(item: HistoryFile) -> list[str]:
    """The RustChain step types a file uses that this deployment does not run yet."""
    data = (HISTORY / item.name).read_bytes()
    mission = compile_mission(data, item.name, _registry_with_pending_types()).mission
    used = {step.step_type for step in mission.steps} if mission is not None else set()
    return sorted(used & set(_registry().refused))


def _notes(compilation: Compilation) -> str:
    shown = compilation.errors[:3] if compilation.plan is None else compilation.diagnostics[:2]
    notes = "<br>".join(
        f"`{d.position.line}:{d.position.column}` {d.severity.value}: "
        + d.message.replace("|", "\\|")
        for d in shown
    )
    hidden = len(compilation.diagnostics if compilation.plan else compilation.errors) - len(shown)
    if hidden > 0:
        notes += f"<br>({hidden} more)"
    return notes


def _result(compilation: Compilation) -> str:
    if compilation.plan is not None:
        return f"valid ({len(compilation.plan.steps)} steps)"
    return f"**invalid** ({len(compilation.errors)} error(s))"


def _community_row(compilation: Compilation) -> str:
    return f"| `{compilation.file}` | {_result(compilation)} | {_notes(compilation)} |"


def _history_row(item: HistoryFile) -> str:
    verdict = "valid" if item.rustchain_valid else "invalid"
    outcome = item.outcome.value
    if item.outcome is Outcome.AWAITS_STEP_TYPES:
        outcome += " (" + ", ".join(f"`{t}`" for t in refused_types_in(item)) + ")"
    notes = _notes(item.compilation)
    return f"| `{item.name}` | {verdict} | {outcome}: {_result(item.compilation)} | {notes} |"


def _summary(items: list[HistoryFile]) -> str:
    counts = {outcome: sum(1 for i in items if i.outcome is outcome) for outcome in Outcome}
    valid = sum(1 for i in items if i.rustchain_valid)
    return (
        f"{len(items)} files, {valid} of which RustChain's loader accepts: "
        f"{counts[Outcome.LOADS]} load here, {counts[Outcome.AWAITS_STEP_TYPES]} load once the "
        f"step types they use land; of the {len(items) - valid} it refuses, "
        f"{counts[Outcome.REFUSED]} are refused here too and {counts[Outcome.ACCEPTED_SUPERSET]} "
        f"are accepted because a step has no `name`. Differences: {counts[Outcome.UNEXPECTED]}."
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _differences() -> str:
    rows = "\n".join(f"| {_cell(ours)} | {_cell(here)} |" for ours, here in DIFFERENCES)
    return (
        "\n## Where RustChain's behaviour was a bug or a stub, we do what its documentation "
        "promises\n\n| RustChain | here |\n|---|---|\n" + rows + "\n"
    )


def rustchain_step_types() -> list[str]:
    """RustChain's step types, in the order of STEP_TYPES.md's summary table."""
    text = STEP_TYPES_REFERENCE.read_text()
    return [name for _, name in _SUMMARY_ROW.findall(text)]


def _step_types() -> str:
    names = rustchain_step_types()
    registry = _registry()
    missing = [n for n in names if registry.get(n) is None]
    line = f"{len(names) - len(missing)} of RustChain's {len(names)} step types run here"
    if missing:
        line += "; not yet: " + ", ".join(f"`{n}`" for n in missing)
    return "\n## Step types\n\n" + line + " (each real, see missions.md).\n"


def render() -> str:
    """The whole page."""
    community = [_community_row(compile_compat(path)) for path in mission_files()]
    history = history_files()
    return (
        _INTRO
        + _step_types()
        + _differences()
        + "\n## RustChain's history (`rustchain-history/`)\n\n"
        + _summary(history)
        + "\n\n| file | RustChain | here | diagnostics |\n|---|---|---|---|\n"
        + "\n".join(_history_row(item) for item in history)
        + "\n\n## RustChain's repository (`rustchain-community/`)\n\n"
        + "| file | result | diagnostics |\n|---|---|---|\n"
        + "\n".join(community)
        + "\n"
    )


def main() -> None:
    """Rewrite docs/compatibility.md."""
    PAGE.write_text(render())
    print(f"wrote {PAGE.relative_to(ROOT)} ({len(mission_files())} + {len(history_files())} files)")


if __name__ == "__main__":
    main()
