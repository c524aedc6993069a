"""The `sql_query` step: run one SQL statement on a database the tenant's policy grants (a
SQLite file of the workspace or a PostgreSQL server), or on a fresh in-memory SQLite database.

Each statement is classified with sqlglot (read, write, schema, other) and refused unless the
grant allows its kind; a statement classified `read` also runs in a read-only transaction, so
the database itself refuses a write the classification missed.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import decimal
import sqlite3
import time
import uuid
from contextlib import closing
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, Field, field_validator

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.data import DatabaseGrant, StatementKind
from rustchain.domain.policy.data_rules import statement_text
from rustchain.domain.policy.obligations import Obligation, Use, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support import postgres_connections
from rustchain.steps.support.data_services import check_statements, granted_database
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.sql_statements import parse_statements, possible_kinds, statement_kind
from rustchain.steps.support.sqlite_files import memory_database, workspace_database

if TYPE_CHECKING:
    pass

MEMORY_URLS = ("sqlite://memory:", "sqlite::memory:", "sqlite://:memory:")
Scalar = str | int | float | bool | None


class SqlQueryParameters(BaseModel):
    """The statement, its bound parameters, and the database: a granted one by name, or none
    (a fresh in-memory SQLite database, as RustChain's default `database_url`)."""

    model_config = PARAMETERS
    query: Annotated[str, Field(min_length=1)]
    database: Annotated[str, Field(min_length=1)] | None = None
    database_url: str = "sqlite://memory:"
    # Values for `?` (SQLite) or `%s` (PostgreSQL) placeholders: data never becomes SQL text.
    params: list[Scalar] = Field(default_factory=list)
    # PostgreSQL credentials, from a secret: `{secrets.REPORTS_DB}` (a URL or key=value text).
    connection: Annotated[str, Field(min_length=1)] | None = None
    max_rows: Annotated[int, Field(ge=1, le=100_000)] = 1000

    @field_validator("database_url")
    @classmethod
    def _memory_only(cls, value: str) -> str:
        if value not in MEMORY_URLS:
            raise ValueError(
                "database_url may only be 'sqlite://memory:' (an in-memory database); name a "
                "database the tenant's policy grants with 'database' instead (its connection "
                "comes from the policy and a secret, never from the mission)"
            )
        return value


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)


def _result(
    name: str, columns: list[str], rows: list[Any], affected: int, max_rows: int
) -> dict[str, Any]:
    kept = rows[:max_rows]
    return {
        "database": name,
        "columns": columns,
        "rows": [[_json_value(v) for v in row] for row in kept],
        "row_count": len(kept),
        "rows_affected": max(affected, 0),
        "truncated": len(rows) > max_rows,
    }


def _one_statement(query: str, dialect: str) -> StatementKind:
    statements = parse_statements(query, dialect)
    if len(statements) != 1:
        raise StepRunError(
            f"query holds {len(statements)} statements; a sql_query step runs one "
            "(use one step per statement, or db_migrate for a script)"
        )
    return statement_kind(statements[0])


def run_sqlite(
    connection: sqlite3.Connection, params: SqlQueryParameters, name: str, read_only: bool
) -> dict[str, Any]:
    """Run the statement on an open SQLite connection (in a thread: sqlite3 blocks)."""
    try:
        if read_only:
            connection.execute("PRAGMA query_only = ON")
        cursor = connection.execute(params.query, params.params)
        rows = cursor.fetchmany(params.max_rows + 1)
        columns = [d[0] for d in cursor.description or ()]
        return _result(name, columns, rows, cursor.rowcount, params.max_rows)
    except sqlite3.Error as error:
        raise StepRunError(f"database '{name}' refused the query: {error}") from None


async def _run_postgres(
    context: StepContext, grant: DatabaseGrant, params: SqlQueryParameters, read_only: bool
) -> dict[str, Any]:
    import psycopg

    connection = await postgres_connections.connect(context, grant, params.connection)
    try:
        async with connection:
            await connection.set_read_only(read_only)
            async with connection.transaction(), connection.cursor() as cursor:
                # A prepared statement is one statement: the server refuses a second one that
                # the classification might have missed.
                await cursor.execute(params.query.encode(), params.params or None, prepare=True)
                rows = await cursor.fetchmany(params.max_rows + 1) if cursor.description else []
                columns = [c.name for c in cursor.description or ()]
                return _result(grant.name, columns, rows, cursor.rowcount, params.max_rows)
    except psycopg.Error as error:
        raise StepRunError(f"database '{grant.name}' refused the query: {error}") from None


async def sql_query(params: SqlQueryParameters, context: StepContext) -> dict[str, Any]:
    """Columns and rows (at most max_rows) of the statement, and how many rows it changed."""
    if params.database is None:
        _one_statement(params.query, "sqlite")
        deadline = time.monotonic() + context.timeout_seconds

        def in_memory() -> dict[str, Any]:
            with closing(memory_database(deadline)) as connection:
                return run_sqlite(connection, params, "memory", read_only=False)

        return await asyncio.to_thread(in_memory)
    grant = granted_database(context, params.database)
    dialect = "sqlite" if grant.engine == "sqlite" else "postgres"
    kind = _one_statement(params.query, dialect)
    check_statements(context, grant, [kind])
    read_only = kind == "read"
    if grant.engine == "postgresql":
        return await _run_postgres(context, grant, params, read_only)

    def on_file() -> dict[str, Any]:
        with workspace_database(
            context, grant.path or "", "database", create=not read_only, read_only=read_only
        ) as connection:
            return run_sqlite(connection, params, grant.name, read_only)

    return await asyncio.to_thread(on_file)


STEP_TYPE = StepDefinition(
    "sql_query", "Run a SQL statement on a granted database", SqlQueryParameters, run=sql_query
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The database must be granted, and each kind the query may be allowed on it."""
    database = step.parameters.get("database")
    if not isinstance(database, str):
        return []
    kinds = possible_kinds(step.parameters.get("query"))
    return [
        *text_uses(Sink.DATABASE, "database", database),
        Use(Sink.SQL_STATEMENT, "query", statement_text(database, kinds)),
    ]


CONSTRAINTS = constraints
