"""The `db_migrate` step: apply the `.sql` files of a workspace folder, in name order, to a
granted database; each file in one transaction with its record in a migrations table, so a run
applies only what is new and a failed file leaves nothing half done (RustChain's was a stub).

A file already applied whose content changed since is an error: the database no longer matches
the folder, and running the new text would not make it match.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, Field

from rustchain.domain.plans.plan import PlannedStep
from rustchain.domain.policy.data import STATEMENT_KINDS, DatabaseGrant
from rustchain.domain.policy.data_rules import ANY_KIND, statement_text
from rustchain.domain.policy.obligations import Obligation, Use, text_uses
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support import postgres_connections
from rustchain.steps.support.data_services import (
    STATEMENTS_FIELD,
    check_statements,
    granted_database,
)
from rustchain.steps.support.definition import PARAMETERS, StepDefinition
from rustchain.steps.support.os_refusals import os_refusals
from rustchain.steps.support.runtime import StepContext, StepRunError
from rustchain.steps.support.sql_statements import statement_kinds
from rustchain.steps.support.sqlite_files import workspace_database
from rustchain.steps.support.workspace_files import (
    open_directory,
    read_bytes,
    workspace_relative,
    workspace_root,
)

if TYPE_CHECKING:
    pass

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_FILES = 10_000


class DbMigrateParameters(BaseModel):
    """The folder of migrations, the granted database and where applied ones are recorded."""

    model_config = PARAMETERS
    migration_dir: Annotated[str, Field(min_length=1)] = "migrations"
    database: Annotated[str, Field(min_length=1)]
    # PostgreSQL credentials, from a secret (`{secrets.NAME}`).
    connection: Annotated[str, Field(min_length=1)] | None = None
    table: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")] = "rustchain_migrations"


@dataclass(frozen=True)
class Migration:
    """One file: its name (the version), its SQL and the digest recorded with it."""

    name: str
    script: str
    checksum: str


def _natural(name: str) -> list[Any]:
    # `2_x.sql` before `10_x.sql`, as people number migrations.
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def read_migrations(context: StepContext, folder: str) -> list[Migration]:
    """The folder's `.sql` files (regular files, not links), in natural name order."""
    relative = workspace_relative(context, folder, write=False, parameter="migration_dir")
    with workspace_root(context) as root, os_refusals("migration_dir", folder):
        try:
            fd = open_directory(root, relative, create=False)
        except (FileNotFoundError, NotADirectoryError):
            raise StepRunError(
                f"migration_dir '{folder}' is not a folder of the workspace"
            ) from None
        try:
            with os.scandir(fd) as entries:
                names = [
                    e.name
                    for e in entries
                    if e.name.endswith(".sql") and e.is_file(follow_symlinks=False)
                ]
        finally:
            os.close(fd)
    if len(names) > MAX_FILES:
        raise StepRunError(f"migration_dir '{folder}' holds more than {MAX_FILES} .sql files")
    migrations = []
    for name in sorted(names, key=_natural):
        data = read_bytes(context, f"{relative}/{name}", MAX_FILE_BYTES, "migration_dir")
        try:
            script = data.decode("utf-8")
        except UnicodeDecodeError:
            raise StepRunError(f"migration '{name}' is not UTF-8 text") from None
        migrations.append(Migration(name, script, hashlib.sha256(data).hexdigest()))
    return migrations


def check_kinds(context: StepContext, grant: DatabaseGrant, migrations: list[Migration]) -> None:
    """Every statement of every file, and the bookkeeping, must be a kind the grant allows."""
    dialect = "sqlite" if grant.engine == "sqlite" else "postgres"
    kinds: dict[str, None] = {"schema": None, "write": None}
    for migration in migrations:
        try:
            kinds.update(dict.fromkeys(statement_kinds(migration.script, dialect)))
        except StepRunError as error:
            raise StepRunError(f"migration '{migration.name}': {error}") from None
    check_statements(context, grant, [k for k in STATEMENT_KINDS if k in kinds])


def _changed(migration: Migration) -> StepRunError:
    return StepRunError(
        f"migration '{migration.name}' was applied with other content (checksum differs); "
        "add a new migration instead of editing an applied one"
    )


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def migrate_sqlite(
    connection: sqlite3.Connection, table: str, migrations: list[Migration]
) -> list[str]:
    """Apply the new migrations to an open SQLite database; their names."""
    connection.execute(
        f'CREATE TABLE IF NOT EXISTS "{table}" '
        "(version TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = dict(connection.execute(f'SELECT version, checksum FROM "{table}"').fetchall())
    applied = []
    for migration in migrations:
        if migration.name in done:
            if done[migration.name] != migration.checksum:
                raise _changed(migration)
            continue
        record = (
            f'INSERT INTO "{table}" VALUES ({_quote(migration.name)}, '
            f"{_quote(migration.checksum)}, datetime('now'))"
        )
        try:
            # executescript commits first and runs the text as written: the file and its record
            # go in one explicit transaction.
            connection.executescript(f"BEGIN;\n{migration.script}\n;\n{record};\nCOMMIT;")
        except sqlite3.Error as error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise StepRunError(f"migration '{migration.name}' failed: {error}") from None
        applied.append(migration.name)
    return applied


async def migrate_postgres(
    context: StepContext,
    grant: DatabaseGrant,
    params: DbMigrateParameters,
    migrations: list[Migration],
) -> list[str]:
    """Apply the new migrations to a granted PostgreSQL database; their names."""
    import psycopg
    from psycopg import sql

    table = sql.Identifier(params.table)
    applied: list[str] = []
    connection = await postgres_connections.connect(context, grant, params.connection)
    current = "the migrations table"
    try:
        async with connection:
            await connection.set_autocommit(True)
            await connection.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (version text PRIMARY KEY, "
                    "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(table)
            )
            rows = await (
                await connection.execute(sql.SQL("SELECT version, checksum FROM {}").format(table))
            ).fetchall()
            done = dict(rows)
            for migration in migrations:
                if migration.name in done:
                    if done[migration.name] != migration.checksum:
                        raise _changed(migration)
                    continue
                current = f"migration '{migration.name}'"
                async with connection.transaction():
                    await connection.execute(migration.script.encode())
                    await connection.execute(
                        sql.SQL("INSERT INTO {} (version, checksum) VALUES (%s, %s)").format(table),
                        (migration.name, migration.checksum),
                    )
                applied.append(migration.name)
    except psycopg.Error as error:
        raise StepRunError(f"{current} failed on database '{grant.name}': {error}") from None
    return applied


async def db_migrate(params: DbMigrateParameters, context: StepContext) -> dict[str, Any]:
    """`{"migration_dir", "database", "applied": [names], "already_applied": n}`."""
    grant = granted_database(context, params.database)
    migrations = await asyncio.to_thread(read_migrations, context, params.migration_dir)
    check_kinds(context, grant, migrations)
    if grant.engine == "postgresql":
        applied = await migrate_postgres(context, grant, params, migrations)
    else:

        def on_file() -> list[str]:
            with workspace_database(
                context, grant.path or "", f"database '{grant.name}'", create=True, read_only=False
            ) as connection:
                return migrate_sqlite(connection, params.table, migrations)

        applied = await asyncio.to_thread(on_file)
    return {
        "migration_dir": params.migration_dir,
        "database": grant.name,
        "applied": applied,
        "already_applied": len(migrations) - len(applied),
    }


STEP_TYPE = StepDefinition(
    "db_migrate", "Apply SQL migrations to a granted database", DbMigrateParameters, run=db_migrate
)


def constraints(step: PlannedStep) -> list[Obligation]:
    """The folder is read; the database must be granted, and for any kind of statement: the
    files' content is known only at run time."""
    parameters = step.parameters
    database = parameters.get("database")
    uses: list[Obligation] = [
        *text_uses(Sink.PATH_READ, "migration_dir", parameters.get("migration_dir", "migrations")),
    ]
    if isinstance(database, str):
        uses += text_uses(Sink.DATABASE, "database", database)
        uses.append(Use(Sink.SQL_STATEMENT, STATEMENTS_FIELD, statement_text(database, [ANY_KIND])))
    return uses


CONSTRAINTS = constraints
