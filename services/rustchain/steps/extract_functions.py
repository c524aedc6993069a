"""The `extract_functions` step: the functions and methods of source files (tree-sitter).

RustChain's was a stub (`{"note": "Implementation pending"}`); this one parses a file, a folder
of the workspace or inline `content` with the installed grammars and lists each function with
its place, signature, enclosing type and doc comment.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.checks import check_path
from rustchain.domain.policy.obligations import Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.code_functions import LANGUAGES, Function, functions_of, language_of
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.workspace_files import read_bytes
from rustchain.steps.support.workspace_walk import list_entries

Language = Literal["python", "javascript", "typescript", "tsx", "rust", "go", "java"]

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_FILES = 2000
MAX_TOTAL_BYTES = 32 * 1024 * 1024
MAX_FUNCTIONS = 20_000


class SourceParameters(BaseModel):
    """A source file or folder of the workspace (`path`), or inline `content` with its
    `language`; for a file the language defaults to what its extension says."""

    model_config = PARAMETERS
    path: Annotated[str, Field(min_length=1)] | None = None
    content: str | None = None
    language: Language | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SourceParameters:
        if (self.content is None) == (self.path is None):
            raise ValueError("give exactly one of 'path' (a file or folder) or 'content'")
        if self.content is not None and self.language is None:
            raise ValueError("'content' needs a 'language': " + ", ".join(LANGUAGES))
        return self


class ExtractFunctionsParameters(SourceParameters):
    """The source to read."""


@dataclass(frozen=True)
class Source:
    """One file's text and language."""

    file: str
    language: str
    data: bytes


def _folder_sources(context: StepContext, params: SourceParameters, path: str) -> list[Source]:
    policy = context.enforced_policy
    found: list[Source] = []
    total = 0
    for entry in list_entries(context, path, recursive=True):
        language = params.language or language_of(entry.path)
        if entry.kind != "file" or language_of(entry.path) is None or language is None:
            continue  # links are never followed; files of other languages are not read
        if check_path(policy, entry.path) is not None:
            continue  # a denied file (under .git, say) is not read
        if len(found) == MAX_FILES:
            raise StepRunError(f"path '{path}' holds more than {MAX_FILES} source files")
        data = read_bytes(context, entry.path, MAX_FILE_BYTES)
        total += len(data)
        if total > MAX_TOTAL_BYTES:
            raise StepRunError(f"the source files of '{path}' exceed {MAX_TOTAL_BYTES} bytes")
        found.append(Source(entry.path, language, data))
    return found


def sources(context: StepContext, params: SourceParameters) -> list[Source]:
    """The source files the parameters name, each with its language."""
    if params.content is not None:
        data = params.content.encode("utf-8")
        if len(data) > MAX_FILE_BYTES:
            raise StepRunError(f"content is larger than {MAX_FILE_BYTES} bytes")
        return [Source("<content>", params.language or "", data)]
    path = params.path or "."
    if _is_folder(context, path):
        return _folder_sources(context, params, path)
    language = params.language or language_of(path)
    if language is None:
        raise StepRunError(
            f"cannot tell the language of '{path}' from its extension; give 'language'"
        )
    return [Source(path, language, read_bytes(context, path, MAX_FILE_BYTES))]


def _is_folder(context: StepContext, path: str) -> bool:
    try:
        list_entries(context, path, recursive=False)
    except StepRunError as error:
        if "is not a directory" in str(error):
            return False
        raise
    return True


def collect(context: StepContext, params: SourceParameters) -> tuple[list[str], list[Function]]:
    """The files read and every function in them, file by file (run in a worker thread)."""
    files = sources(context, params)
    found: list[Function] = []
    for source in files:
        found += functions_of(source.data, source.language, source.file)
        if len(found) > MAX_FUNCTIONS:
            raise StepRunError(f"the sources hold more than {MAX_FUNCTIONS} functions")
    return [s.file for s in files], found


async def extract_functions(
    params: ExtractFunctionsParameters, context: StepContext
) -> dict[str, Any]:
    """`functions` (name, kind, file, line, end_line, signature, parent, doc), their `count`
    and the `files` read."""
    files, found = await asyncio.to_thread(collect, context, params)
    return {"functions": [f.as_json() for f in found], "count": len(found), "files": files}


STEP_TYPE = StepDefinition(
    "extract_functions",
    "List the functions of source files (tree-sitter)",
    ExtractFunctionsParameters,
    run=extract_functions,
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The source read stays in the workspace and outside denied paths."""
    return text_uses(Sink.PATH_READ, "path", step.parameters.get("path"))


CONSTRAINTS = constraints
