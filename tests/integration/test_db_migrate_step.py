"""db_migrate on a real SQLite file of the workspace and the machine's PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

import psycopg
import pytest

from rustchain.domain.policy.model import Policy
from rustchain.steps.support.runtime import PolicyRefusedError, StepRunError
from tests.integration.conftest import postgres_url
from tests.integration.data_step_helpers import context_for, run_step

ALL = ["read", "write", "schema", "other"]
GRANTS = Policy.model_validate(
    {
        "databases": [
            {"name": "app", "engine": "sqlite", "path": "app.db", "statements": ALL},
            {
                "name": "no_other",
                "engine": "sqlite",
                "path": "app.db",
                "statements": ["read", "write", "schema"],
            },
            {
                "name": "pg",
                "engine": "postgresql",
                "host": "127.0.0.1",
                "database": "test",
                "statements": ALL,
            },
        ]
    }
)


def _write(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def test_new_migrations_are_applied_in_order_once(tmp_path: Path) -> None:
    _write(
        tmp_path / "migrations",
        {
            "10_seed.sql": "INSERT INTO t (a) VALUES (10);",
            "2_table.sql": "CREATE TABLE t (a INTEGER);\nINSERT INTO t (a) VALUES (2);",
            "notes.txt": "not a migration",
        },
    )
    context = context_for(tmp_path, GRANTS)

    first = run_step("db_migrate", context, database="app")
    again = run_step("db_migrate", context, database="app")
    _write(tmp_path / "migrations", {"11_more.sql": "INSERT INTO t (a) VALUES (11);"})
    third = run_step("db_migrate", context, database="app")

    assert first["applied"] == ["2_table.sql", "10_seed.sql"]
    assert again == {
        "migration_dir": "migrations",
        "database": "app",
        "applied": [],
        "already_applied": 2,
    }
    assert third["applied"] == ["11_more.sql"]
    with sqlite3.connect(tmp_path / "app.db") as connection:
        assert [r[0] for r in connection.execute("SELECT a FROM t ORDER BY rowid")] == [2, 10, 11]


def test_a_failing_migration_leaves_nothing_of_itself(tmp_path: Path) -> None:
    _write(
        tmp_path / "migrations",
        {
            "1_table.sql": "CREATE TABLE t (a INTEGER);",
            "2_broken.sql": "INSERT INTO t (a) VALUES (1);\nINSERT INTO missing VALUES (1);",
        },
    )

    with pytest.raises(StepRunError, match=r"migration '2_broken.sql' failed"):
        run_step("db_migrate", context_for(tmp_path, GRANTS), database="app")

    with sqlite3.connect(tmp_path / "app.db") as connection:
        assert connection.execute("SELECT count(*) FROM t").fetchone()[0] == 0
        versions = [r[0] for r in connection.execute("SELECT version FROM rustchain_migrations")]
    assert versions == ["1_table.sql"]


def test_an_applied_migration_that_changed_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path / "migrations", {"1_table.sql": "CREATE TABLE t (a INTEGER);"})
    context = context_for(tmp_path, GRANTS)
    run_step("db_migrate", context, database="app")
    _write(tmp_path / "migrations", {"1_table.sql": "CREATE TABLE t (a TEXT);"})

    with pytest.raises(StepRunError, match="applied with other content"):
        run_step("db_migrate", context, database="app")


def test_a_kind_of_statement_the_grant_refuses_stops_every_file(tmp_path: Path) -> None:
    _write(
        tmp_path / "migrations",
        {
            "1_table.sql": "CREATE TABLE t (a INTEGER);",
            "2_pragma.sql": "PRAGMA user_version = 7;",
        },
    )

    with pytest.raises(
        PolicyRefusedError, match=r"databases.statement.*no_other/write\+schema\+other"
    ):
        run_step("db_migrate", context_for(tmp_path, GRANTS), database="no_other")
    assert not (tmp_path / "app.db").exists()


def test_a_database_not_granted_is_refused_at_run_time(tmp_path: Path) -> None:
    _write(tmp_path / "migrations", {"1.sql": "CREATE TABLE t (a INTEGER);"})

    with pytest.raises(PolicyRefusedError, match=r"databases.name"):
        run_step("db_migrate", context_for(tmp_path, None), database="app")


def test_a_migration_linked_out_of_the_workspace_is_not_read(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    _write(workspace / "migrations", {"1_table.sql": "CREATE TABLE t (a INTEGER);"})
    (tmp_path / "evil.sql").write_text("CREATE TABLE evil (a INTEGER);")
    os.symlink(tmp_path / "evil.sql", workspace / "migrations" / "2_evil.sql")

    out = run_step("db_migrate", context_for(workspace, GRANTS), database="app")

    assert out["applied"] == ["1_table.sql"]


def test_a_migration_folder_outside_the_workspace_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyRefusedError, match=r"filesystem.workspace"):
        run_step(
            "db_migrate",
            context_for(tmp_path, GRANTS),
            database="app",
            migration_dir="../elsewhere",
        )


@pytest.mark.postgres
def test_postgresql_migrations_are_applied_in_transactions(tmp_path: Path) -> None:
    url = postgres_url()
    suffix = uuid.uuid4().hex[:10]
    table, ledger = f"mig_{suffix}", f"ledger_{suffix}"
    _write(
        tmp_path / "migrations",
        {
            "1_table.sql": f"CREATE TABLE {table} (a integer);",
            "2_rows.sql": f"INSERT INTO {table} VALUES (1); INSERT INTO {table} VALUES (2);",
            "3_broken.sql": f"INSERT INTO {table} VALUES (3); SELECT * FROM no_such_{suffix};",
        },
    )
    context = context_for(tmp_path, GRANTS)
    connection = "postgresql://postgres@127.0.0.1/test"
    try:
        with pytest.raises(StepRunError, match=r"3_broken.sql"):
            run_step("db_migrate", context, database="pg", connection=connection, table=ledger)
        (tmp_path / "migrations" / "3_broken.sql").unlink()
        again = run_step("db_migrate", context, database="pg", connection=connection, table=ledger)
        with psycopg.connect(url) as check:
            rows = check.execute(f"SELECT a FROM {table} ORDER BY a").fetchall()
            versions = check.execute(f"SELECT version FROM {ledger} ORDER BY version").fetchall()
    finally:
        with psycopg.connect(url, autocommit=True) as cleanup:
            cleanup.execute(f"DROP TABLE IF EXISTS {table}")
            cleanup.execute(f"DROP TABLE IF EXISTS {ledger}")

    assert again["applied"] == [] and again["already_applied"] == 2
    assert rows == [(1,), (2,)]
    assert versions == [("1_table.sql",), ("2_rows.sql",)]
