"""sql_query against real databases: SQLite files of the workspace and the machine's
PostgreSQL; every refusal is made by the runner itself (the verifier bypassed)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from rustchain.domain.policy.model import Policy
from rustchain.steps.support.runtime import PolicyRefusedError, StepRunError
from tests.integration.conftest import postgres_url
from tests.integration.data_step_helpers import context_for, run_step

GRANTS = Policy.model_validate(
    {
        "databases": [
            {
                "name": "app",
                "engine": "sqlite",
                "path": "data/app.db",
                "statements": ["read", "write", "schema"],
            },
            {"name": "app_ro", "engine": "sqlite", "path": "data/app.db"},
            {
                "name": "pg",
                "engine": "postgresql",
                "host": "127.0.0.1",
                "database": "test",
                "statements": ["read", "write", "schema"],
            },
            {"name": "pg_ro", "engine": "postgresql", "host": "127.0.0.1", "database": "test"},
        ]
    }
)

ALL_KINDS = Policy.model_validate(
    {
        "databases": [
            {
                "name": "pg",
                "engine": "postgresql",
                "host": "127.0.0.1",
                "database": "test",
                "statements": ["read", "write", "schema", "other"],
            },
        ]
    }
)


def _app(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    context = context_for(tmp_path, GRANTS)
    run_step("sql_query", context, database="app", query="CREATE TABLE t (a INTEGER, b TEXT)")
    run_step(
        "sql_query", context, database="app", query="INSERT INTO t VALUES (?, ?)", params=[1, "one"]
    )
    return tmp_path


def test_sqlite_file_of_the_workspace_is_written_and_read(tmp_path: Path) -> None:
    _app(tmp_path)

    out = run_step(
        "sql_query",
        context_for(tmp_path, GRANTS),
        database="app_ro",
        query="SELECT a, b FROM t WHERE a = ?",
        params=[1],
    )

    assert out["columns"] == ["a", "b"]
    assert out["rows"] == [[1, "one"]]
    assert (tmp_path / "data" / "app.db").stat().st_size > 0


def test_without_a_database_the_query_runs_on_a_fresh_memory_database(tmp_path: Path) -> None:
    out = run_step("sql_query", context_for(tmp_path, None), query="SELECT 1 + 1 AS two")

    assert out == {
        "database": "memory",
        "columns": ["two"],
        "rows": [[2]],
        "row_count": 1,
        "rows_affected": 0,
        "truncated": False,
    }


def test_max_rows_truncates_the_output(tmp_path: Path) -> None:
    query = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 50) SELECT i FROM n"
    )
    out = run_step("sql_query", context_for(tmp_path, None), query=query, max_rows=10)

    assert out["row_count"] == 10 and out["truncated"] is True


def test_a_write_on_a_read_only_grant_is_refused_at_run_time(tmp_path: Path) -> None:
    _app(tmp_path)

    with pytest.raises(PolicyRefusedError, match=r"databases.statement.*app_ro/write"):
        run_step(
            "sql_query", context_for(tmp_path, GRANTS), database="app_ro", query="DELETE FROM t"
        )


def test_a_database_the_policy_does_not_grant_is_refused_even_without_a_policy(
    tmp_path: Path,
) -> None:
    with pytest.raises(PolicyRefusedError, match=r"databases.name"):
        run_step("sql_query", context_for(tmp_path, None), database="app", query="SELECT 1")


@pytest.mark.parametrize(
    "query",
    ["ATTACH DATABASE '/etc/passwd' AS stolen", "VACUUM INTO '/tmp/rustchain-vacuum-escape.db'"],
)
def test_sqlite_cannot_open_files_outside_the_workspace(tmp_path: Path, query: str) -> None:
    # An in-memory database runs every kind of statement: the authorizer stands alone.
    with pytest.raises(StepRunError, match="refused the query"):
        run_step("sql_query", context_for(tmp_path, None), query=query)
    assert not Path("/tmp/rustchain-vacuum-escape.db").exists()


def test_a_database_file_that_is_a_link_out_of_the_workspace_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.db"
    workspace = tmp_path / "ws"
    (workspace / "data").mkdir(parents=True)
    os.symlink(outside, workspace / "data" / "app.db")

    with pytest.raises(StepRunError, match="not a regular file"):
        run_step(
            "sql_query",
            context_for(workspace, GRANTS),
            database="app",
            query="CREATE TABLE x (a INTEGER)",
        )
    assert not outside.exists()


def test_a_folder_link_out_of_the_workspace_is_refused(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", workspace / "data")

    with pytest.raises(StepRunError):
        run_step(
            "sql_query",
            context_for(workspace, GRANTS),
            database="app",
            query="CREATE TABLE x (a INTEGER)",
        )
    assert not (tmp_path / "elsewhere" / "app.db").exists()


def test_two_statements_in_one_step_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StepRunError, match="2 statements"):
        run_step("sql_query", context_for(tmp_path, None), query="SELECT 1; SELECT 2")


@pytest.mark.postgres
def test_postgresql_runs_a_granted_statement_with_bound_parameters(tmp_path: Path) -> None:
    postgres_url()
    table = f"sq_{uuid.uuid4().hex[:10]}"
    context = context_for(tmp_path, GRANTS)
    connection = "postgresql://postgres@127.0.0.1:5432/test"
    try:
        run_step(
            "sql_query",
            context,
            database="pg",
            connection=connection,
            query=f"CREATE TABLE {table} (n integer, label text)",
        )
        written = run_step(
            "sql_query",
            context,
            database="pg",
            connection=connection,
            query=f"INSERT INTO {table} VALUES (%s, %s)",
            params=[7, "seven"],
        )
        read = run_step(
            "sql_query",
            context,
            database="pg_ro",
            connection=connection,
            query=f"SELECT n + 1 AS next, label FROM {table} WHERE n = %s",
            params=[7],
        )
    finally:
        run_step(
            "sql_query",
            context,
            database="pg",
            connection=connection,
            query=f"DROP TABLE IF EXISTS {table}",
        )

    assert written["rows_affected"] == 1
    assert read["columns"] == ["next", "label"] and read["rows"] == [[8, "seven"]]


@pytest.mark.postgres
def test_postgresql_refuses_a_write_hidden_in_a_read_query(tmp_path: Path) -> None:
    postgres_url()
    sequence = f"sq_{uuid.uuid4().hex[:10]}"
    context = context_for(tmp_path, GRANTS)
    connection = "postgresql://postgres@127.0.0.1/test"
    run_step(
        "sql_query",
        context,
        database="pg",
        connection=connection,
        query=f"CREATE SEQUENCE {sequence}",
    )
    try:
        # Classified `read` (a SELECT), so it runs in a read-only transaction the server enforces.
        with pytest.raises(StepRunError, match="read-only transaction"):
            run_step(
                "sql_query",
                context,
                database="pg_ro",
                connection=connection,
                query=f"SELECT nextval('{sequence}')",
            )
    finally:
        run_step(
            "sql_query",
            context,
            database="pg",
            connection=connection,
            query=f"DROP SEQUENCE {sequence}",
        )


@pytest.mark.parametrize(
    ("connection", "reason"),
    [
        ("postgresql://postgres@10.0.0.1:5432/test", "host '10.0.0.1'"),
        ("postgresql://postgres@127.0.0.1:5433/test", "port '5433'"),
        ("postgresql://postgres@127.0.0.1/postgres", "dbname 'postgres'"),
        ("host=127.0.0.1 dbname=test sslkey=/etc/shadow", "sslkey"),
        ("dbname=test service=prod", "service"),
    ],
)
def test_a_connection_text_may_not_lead_elsewhere(
    tmp_path: Path, connection: str, reason: str
) -> None:
    with pytest.raises(PolicyRefusedError, match=reason):
        run_step(
            "sql_query",
            context_for(tmp_path, GRANTS),
            database="pg_ro",
            connection=connection,
            query="SELECT 1",
        )


@pytest.mark.postgres
def test_postgresql_runs_exactly_one_statement(tmp_path: Path) -> None:
    postgres_url()
    # Refused by the classification, and else by the server (a prepared statement is one).
    with pytest.raises(StepRunError, match=r"statements|multiple commands"):
        run_step(
            "sql_query",
            context_for(tmp_path, ALL_KINDS),
            database="pg",
            connection="postgresql://postgres@127.0.0.1/test",
            query="VACUUM; CREATE TABLE rustchain_never_made (a int)",
        )
    found = run_step(
        "sql_query",
        context_for(tmp_path, ALL_KINDS),
        database="pg",
        connection="postgresql://postgres@127.0.0.1/test",
        query="SELECT to_regclass('rustchain_never_made') IS NULL AS absent",
    )
    assert found["rows"] == [[True]]
