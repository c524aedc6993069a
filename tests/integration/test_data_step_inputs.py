"""Whatever text a mission puts in a data step's parameter, the step ends in a result or a
StepRunError naming what was wrong: never a raw Python or driver error."""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rustchain.domain.policy.model import Policy
from rustchain.steps.support.runtime import StepRunError
from tests.integration.data_step_helpers import context_for, run_step

GRANTS = Policy.model_validate(
    {
        "databases": [
            {
                "name": "app",
                "engine": "sqlite",
                "path": "app.db",
                "statements": ["read", "write", "schema", "other"],
            },
        ]
    }
)
sql_text = st.one_of(
    st.text(min_size=1, max_size=60),
    st.lists(
        st.sampled_from(
            [
                "SELECT",
                " 1",
                ";",
                "'",
                '"',
                "(",
                ")",
                "--",
                "/*",
                "\x00",
                "?",
                "é",
                "ATTACH",
                "PRAGMA",
                "WITH",
                "x",
                ",",
            ]
        ),
        min_size=1,
        max_size=12,
    ).map("".join),
)
path_text = st.one_of(
    st.text(min_size=1, max_size=40),
    st.lists(st.sampled_from(["a", "/", ".", "..", "\x00", "\ud800", "app.db"]), min_size=1).map(
        "".join
    ),
)


def _workspace(folder: str) -> Path:
    workspace = Path(folder)
    with sqlite3.connect(workspace / "app.db") as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS t (a INTEGER)")
    (workspace / "migrations").mkdir(exist_ok=True)
    return workspace


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=sql_text, database=st.sampled_from([None, "app"]))
def test_any_query_text_ends_in_a_result_or_a_step_error(query: str, database: str | None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        context = context_for(_workspace(folder), GRANTS)
        parameters: dict[str, Any] = {"query": query}
        if database is not None:
            parameters["database"] = database
        with contextlib.suppress(StepRunError):
            run_step("sql_query", context, **parameters)


@pytest.mark.parametrize(
    ("step_type", "parameter", "others"),
    [
        ("db_backup", "source", {"destination": "copy.db"}),
        ("db_backup", "destination", {"source": "app.db"}),
        ("db_migrate", "migration_dir", {"database": "app"}),
    ],
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(written=path_text)
def test_any_path_text_ends_in_a_result_or_a_step_error(
    step_type: str, parameter: str, others: dict[str, Any], written: str
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        context = context_for(_workspace(folder), GRANTS)
        with contextlib.suppress(StepRunError):
            run_step(step_type, context, **{parameter: written, **others})


def test_a_migration_that_is_not_sql_is_a_step_error(tmp_path: Path) -> None:
    workspace = _workspace(str(tmp_path))
    (workspace / "migrations" / "1.sql").write_bytes(b"\xff\xfe not text")

    with pytest.raises(StepRunError, match=r"^migration '1.sql' is not UTF-8 text"):
        run_step("db_migrate", context_for(workspace, GRANTS), database="app")


def test_a_file_that_is_not_a_database_is_a_step_error(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("just some notes, long enough to look like a header....")

    with pytest.raises(StepRunError, match=r"is not a SQLite database"):
        run_step("db_backup", context_for(tmp_path, None), source="notes.db", destination="copy.db")
