"""The `csv_process` step: parse CSV text (or a workspace file) into headers and records."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.obligations import Obligation, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.workspace_files import source_text


class CsvProcessParameters(BaseModel):
    """The text to parse (RustChain's `content`) or a workspace file, and its delimiter."""

    model_config = PARAMETERS
    content: str | None = None
    path: Annotated[str, Field(min_length=1)] | None = None
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","

    @model_validator(mode="after")
    def _one_source(self) -> CsvProcessParameters:
        if (self.content is None) == (self.path is None):
            raise ValueError("a csv_process step needs exactly one of 'content' or 'path'")
        if self.delimiter in ('"', "\n", "\r"):
            raise ValueError("the delimiter may not be a quote or a line break")
        return self


MAX_TEXT = 10 * 1024 * 1024


async def csv_process(params: CsvProcessParameters, context: StepContext) -> dict[str, Any]:
    """RustChain's output: the first row as `headers`, the others as `records` (lists), and
    their count; every record must have as many fields as the header, as RustChain's did."""
    text = source_text(context, params.content, params.path, MAX_TEXT)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=params.delimiter, strict=True)
    try:
        headers = next(reader, [])
        records = []
        for record in reader:
            if not record:
                continue  # a blank line, which RustChain's reader skipped too
            if len(record) != len(headers):
                raise StepRunError(
                    f"line {reader.line_num}: found record with {len(record)} fields, "
                    f"but the header has {len(headers)} fields"
                )
            records.append(record)
    except csv.Error as error:
        raise StepRunError(f"invalid CSV at line {reader.line_num}: {error}") from None
    return {"headers": headers, "records": records, "row_count": len(records)}


STEP_TYPE = StepDefinition(
    "csv_process", "Parse CSV text into headers and records", CsvProcessParameters, run=csv_process
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """A file parsed must stay in the workspace and outside denied paths."""
    return text_uses(Sink.PATH_READ, "path", step.parameters.get("path"))


CONSTRAINTS = constraints
