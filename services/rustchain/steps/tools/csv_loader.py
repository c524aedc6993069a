"""The `csv_loader` tool (RustChain's): read a CSV file of the workspace into rows."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from pydantic import BaseModel, Field

from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext, StepRunError, read_workspace_file

MAX_BYTES = 10 * 1024 * 1024


class CsvLoaderParameters(BaseModel):
    """The file, its delimiter, and whether its first row names the columns."""

    model_config = PARAMETERS
    file_path: Annotated[str, Field(min_length=1)]
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    has_headers: bool = True


async def csv_loader(params: CsvLoaderParameters, context: StepContext) -> dict[str, Any]:
    """The rows (mappings by column when the file has headers) and their count."""
    data = read_workspace_file(context, params.file_path, MAX_BYTES, "file_path ")
    text = data.decode("utf-8", errors="replace")
    try:
        if params.has_headers:
            reader = csv.DictReader(io.StringIO(text), delimiter=params.delimiter)
            rows: list[Any] = list(reader)
            columns = list(reader.fieldnames or [])
        else:
            rows = list(csv.reader(io.StringIO(text), delimiter=params.delimiter))
            columns = []
    except csv.Error as error:
        raise StepRunError(f"'{params.file_path}' is not valid CSV: {error}") from None
    return {"columns": columns, "rows": rows, "row_count": len(rows)}


TOOL = StepDefinition(
    "csv_loader", "Read a CSV file into rows", CsvLoaderParameters, run=csv_loader
)
