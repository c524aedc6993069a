"""The `file_search` step: find files by name pattern and, optionally, by the text they contain."""

from __future__ import annotations

import posixpath
from typing import Annotated

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.checks import check_path
from rustchain.domain.policy.obligations import Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext
from rustchain.steps.support.workspace_files import read_bytes
from rustchain.steps.support.workspace_walk import glob_parts, list_entries, matches


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
    """Files under `path` whose names match `pattern` (and which contain `contains`); links
    are neither followed nor read."""
    pattern = ["**", *glob_parts(params.pattern)]  # as pathlib's rglob: at any depth
    entries = list_entries(context, params.path, recursive=True)
    searched = posixpath.normpath(params.path)
    base = 0 if searched == "." else len(searched.split("/"))  # names matched below the search
    found: list[dict[str, object]] = []
    for entry in entries:
        if entry.kind != "file" or not matches(pattern, entry.parts[base:]):
            continue
        # A glob can reach files the policy keeps from steps (`*.env` matches `.env`).
        context.check(check_path, entry.path, write=False)
        lines: list[int] = []
        if params.contains is not None:
            text = read_bytes(context, entry.path, None).decode("utf-8", errors="replace")
            lines = [n for n, line in enumerate(text.splitlines(), 1) if params.contains in line]
            if not lines:
                continue
        found.append({"path": entry.path, "lines": lines})
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
