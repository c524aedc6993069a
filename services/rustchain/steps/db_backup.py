"""The `db_backup` step: a consistent copy of a SQLite database into a workspace file, made with
SQLite's online backup API (RustChain copied the file, which can tear a database being written).

The source is a SQLite file of the workspace (`source`, RustChain's parameter) or a granted
database (`database`); a granted PostgreSQL database is refused, and `postgres_dump` says why.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.data_rules import statement_text
from rustchain.domain.policy.obligations import Obligation, Use, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.data_services import (
    STATEMENTS_FIELD,
    check_statements,
    granted_database,
)
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.postgres_dump import refuse_postgres_backup
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.sqlite_files import workspace_database


class DbBackupParameters(BaseModel):
    """What to back up (a workspace SQLite file or a granted database) and where to."""

    model_config = PARAMETERS
    source: Annotated[str, Field(min_length=1)] | None = None
    database: Annotated[str, Field(min_length=1)] | None = None
    destination: Annotated[str, Field(min_length=1)]
    overwrite: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> DbBackupParameters:
        if (self.source is None) == (self.database is None):
            raise ValueError(
                "give exactly one of 'source' (a SQLite file of the workspace) and 'database' "
                "(a database the tenant's policy grants)"
            )
        return self


def backup_sqlite(
    context: StepContext, source: str, what: str, destination: str, overwrite: bool
) -> int:
    """Copy the SQLite database `source` into `destination`; the copy's size in bytes."""
    with (
        workspace_database(context, source, what, create=False, read_only=True) as origin,
        workspace_database(
            context, destination, "destination", create=True, read_only=False
        ) as target,
    ):
        try:
            pages = target.execute("PRAGMA page_count").fetchone()[0]
            if pages and not overwrite:
                raise StepRunError(
                    f"destination '{destination}' already holds a database; "
                    "set overwrite: true to replace it"
                )
            origin.backup(target)
            count, size = (
                target.execute("PRAGMA page_count").fetchone()[0],
                target.execute("PRAGMA page_size").fetchone()[0],
            )
        except sqlite3.Error as error:
            raise StepRunError(f"the backup of '{source}' failed: {error}") from None
    return int(count) * int(size)


async def db_backup(params: DbBackupParameters, context: StepContext) -> dict[str, Any]:
    """`{"source", "destination", "backed_up": true, "format": "sqlite", "bytes"}`."""
    if params.source is not None:
        source, path, what = params.source, params.source, "source"
    else:
        grant = granted_database(context, params.database or "")
        check_statements(context, grant, ["read"])
        if grant.engine == "postgresql":
            refuse_postgres_backup(grant)
        source, path, what = grant.name, grant.path or "", f"database '{grant.name}'"
    size = await asyncio.to_thread(
        backup_sqlite, context, path, what, params.destination, params.overwrite
    )
    return {
        "source": source,
        "destination": params.destination,
        "backed_up": True,
        "format": "sqlite",
        "bytes": size,
    }


STEP_TYPE = StepDefinition(
    "db_backup", "Back up a database into the workspace", DbBackupParameters, run=db_backup
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The source is read (a workspace file, or a granted database that allows reads); the
    destination is written."""
    parameters = step.parameters
    database = parameters.get("database")
    uses: list[Obligation] = [
        *text_uses(Sink.PATH_READ, "source", parameters.get("source")),
        *text_uses(Sink.PATH_WRITE, "destination", parameters.get("destination")),
    ]
    if isinstance(database, str):
        uses += text_uses(Sink.DATABASE, "database", database)
        uses.append(Use(Sink.SQL_STATEMENT, STATEMENTS_FIELD, statement_text(database, ["read"])))
    return uses


CONSTRAINTS = constraints
