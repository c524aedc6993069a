"""Writes docs/compatibility.md: how every file of RustChain's repository fares here.

Run `python -m rustchain.tools.compat_report` after a change to the mission language; a test
fails while the page and the behaviour disagree.
"""

from __future__ import annotations

from pathlib import Path

from rustchain.domain.compiler import Compilation, compile_mission
from rustchain.steps import default_registry

ROOT = Path(__file__).resolve().parents[3]
COMPAT = ROOT.parent / "shared" / "compat" / "rustchain-community"
PAGE = ROOT / "docs" / "compatibility.md"

_INTRO = """# Compatibility with RustChain missions

Every mission file of the RustChain repository (../shared/compat/rustchain-community/, MIT) is
loaded by `tests/unit/test_compatibility.py`, and this page is generated from the same results
(`python -m rustchain.tools.compat_report`), so the two cannot drift apart.

What the original (Rust) RustChain accepted and we keep accepting:
- `step_type` as `create_file`, `CreateFile`, `Tool` or `{type: ...}`.
- Keys it does not know: serde ignored them and real missions carry metadata (`tags`, `author`,
  `category`...). We load such files too and print a warning per key. A key that looks like a
  misspelt known key (`depends-on`, `max_parallel`) is an error with a suggestion, because
  ignoring it would silently change what the mission does.
- Steps without `name` (RustChain's struct required it, yet its own `mission create` templates
  omit it): the name defaults to the step id.
- Text in braces that names no step or variable (`f"{message}"` in generated code, `{{ name }}`
  templates, `${shell}`) stays literal, as RustChain left it.

What we refuse, with a precise error:
- The legacy JSON shape (`config` instead of `parameters`, `dependencies`, `timeout`,
  `retry_count`): RustChain's loader refused it too (`parameters` is a required field).
- Step types RustChain never had (`Policy`, `Safety`, `Audit`) and RustChain step types we do not
  run yet (git, SQL, Redis...): never silently accepted.

| file | result | diagnostics |
|---|---|---|
"""


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
    return compile_mission(path.read_bytes(), name, default_registry())


def _row(compilation: Compilation) -> str:
    errors = len(compilation.errors)
    warnings = len(compilation.diagnostics) - errors
    if compilation.plan is not None:
        result = f"valid ({len(compilation.plan.steps)} steps)"
    else:
        result = f"**invalid** ({errors} error(s))"
    shown = [d for d in compilation.diagnostics if d.severity.value == "error"][:3]
    if compilation.plan is not None:
        shown = compilation.diagnostics[:2]
    notes = "<br>".join(
        f"`{d.position.line}:{d.position.column}` {d.severity.value}: "
        + d.message.replace("|", "\\|")
        for d in shown
    )
    if warnings and compilation.plan is not None and warnings > len(shown):
        notes += f"<br>({warnings} warning(s) in all)"
    return f"| `{compilation.file}` | {result} | {notes} |"


def render() -> str:
    """The whole page."""
    rows = [_row(compile_compat(path)) for path in mission_files()]
    return _INTRO + "\n".join(rows) + "\n"


def main() -> None:
    """Rewrite docs/compatibility.md."""
    PAGE.write_text(render())
    print(f"wrote {PAGE.relative_to(ROOT)} ({len(mission_files())} files)")


if __name__ == "__main__":
    main()
