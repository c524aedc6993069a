"""The `file_search` step: find files by name pattern and, optionally, by the text they contain."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from rustchain.domain.plan import PlannedStep
from rustchain.domain.policy_checks import check_path
from rustchain.domain.policy_obligations import Obligation, text_uses
from rustchain.domain.policy_rules import Sink
from rustchain.steps.definition import PARAMETERS, StepDefinition
from rustchain.steps.runtime import StepContext, relative, workspace_dir


class FileSearchParameters(BaseModel):
    """Where to look, which names (glob) and which text."""

    model_config = PARAMETERS
    path: str = "."
    pattern: Annotated[str, Field(min_length=1)] = "*"
    contains: str | None = None
    max_results: Annotated[int, Field(ge=1)] = 1000


async def file_search(
    params: FileSearchParameters, context: StepContext
) -> list[dict[str, object]]:
    """Files under `path` whose names match `pattern` (and which contain `contains`)."""
    root = workspace_dir(context, params.path)
    found: list[dict[str, object]] = []
    for entry in sorted(root.rglob(params.pattern)):
        if not entry.is_file():
            continue
        # A glob can reach files the policy keeps from steps (`*.env` matches `.env`).
        context.check(check_path, relative(context, entry), write=False)
        lines: list[int] = []
        if params.contains is not None:
            text = entry.read_text(encoding="utf-8", errors="replace")
            lines = [n for n, line in enumerate(text.splitlines(), 1) if params.contains in line]
            if not lines:
                continue
        found.append({"path": relative(context, entry), "lines": lines})
        if len(found) >= params.max_results:
            break
    return found


STEP_TYPE = StepDefinition(
    "file_search", "Find files by name and content", FileSearchParameters, run=file_search
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The directory searched, and the name pattern (a relative glob), stay in the workspace."""
    parameters = step.parameters
    return [
        *text_uses(Sink.PATH_READ, "path", parameters.get("path", ".")),
        *text_uses(Sink.PATH_READ, "pattern", parameters.get("pattern", "*")),
    ]


CONSTRAINTS = constraints
