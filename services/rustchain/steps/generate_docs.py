"""The `generate_docs` step: Markdown reference of source files, from their functions and docs.

RustChain's was a stub (`{"note": "Implementation pending"}`); this one extracts the functions
(as `extract_functions` does), writes one section per file with each function's signature,
place and doc comment, and, given `output`, writes the Markdown to that workspace file.
"""

from __future__ import annotations

import asyncio
from itertools import groupby
from typing import Annotated, Any

from pydantic import Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.extract_functions import SourceParameters, collect
from rustchain.steps.support.code_functions import Function
from rustchain.steps.support.definition import StepDefinition
from rustchain.steps.support.runtime import StepContext
from rustchain.steps.support.workspace_files import write_file


class GenerateDocsParameters(SourceParameters):
    """The source to document; `output` (a workspace file) receives the Markdown; `title` heads
    it; `include_undocumented: false` leaves out functions without a doc comment."""

    output: Annotated[str, Field(min_length=1)] | None = None
    title: Annotated[str, Field(min_length=1, max_length=200)] = "API reference"
    include_undocumented: bool = True


def _section(file: str, functions: list[Function]) -> list[str]:
    lines = [f"## `{file}`", ""]
    for function in functions:
        owner = f"{function.parent}." if function.parent else ""
        lines += [f"### {owner}{function.name}", "", "```", function.signature, "```", ""]
        lines += [f"*{function.kind}, line {function.line}*", ""]
        if function.doc:
            lines += [function.doc, ""]
    return lines


def markdown(title: str, functions: list[Function]) -> str:
    """The reference: the title, then one section per file, functions in source order."""
    lines = [f"# {title}", ""]
    for file, group in groupby(functions, key=lambda f: f.file):
        lines += _section(file, list(group))
    return "\n".join(lines).rstrip() + "\n"


async def generate_docs(params: GenerateDocsParameters, context: StepContext) -> dict[str, Any]:
    """The Markdown, the number of functions documented and the files read; with `output`,
    the workspace file written."""
    files, found = await asyncio.to_thread(collect, context, params)
    if not params.include_undocumented:
        found = [f for f in found if f.doc]
    text = markdown(params.title, found)
    written = None
    if params.output is not None:
        written = write_file(context, params.output, text.encode(), overwrite=True, mode=None)
    return {"markdown": text, "functions": len(found), "files": files, "output": written}


STEP_TYPE = StepDefinition(
    "generate_docs",
    "Write a Markdown reference of source files' functions",
    GenerateDocsParameters,
    run=generate_docs,
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The source read and the file written stay in the workspace, outside denied (and, for
    the output, read-only) paths."""
    parameters = step.parameters
    return [
        *text_uses(Sink.PATH_READ, "path", parameters.get("path")),
        *text_uses(Sink.PATH_WRITE, "output", parameters.get("output")),
    ]


CONSTRAINTS = constraints
