"""The `delete_file` step: delete a file in the workspace."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from rustchain.steps.definition import PARAMETERS, StepDefinition


class DeleteFileParameters(BaseModel):
    """The file to delete; a missing file is an error unless `missing_ok`."""

    model_config = PARAMETERS
    path: Annotated[str, Field(min_length=1)]
    missing_ok: bool = False


STEP_TYPE = StepDefinition("delete_file", "Delete a file", DeleteFileParameters)
