"""db_backup with SQLite's online backup API, on real database files of the workspace."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from rustchain.domain.policy.model import Policy
from rustchain.steps.support.runtime import PolicyRefusedError, StepRunError
from tests.integration.data_step_helpers import context_for, run_step

GRANTS = Policy.model_validate(
    {
        "databases": [
            {"name": "app", "engine": "sqlite", "path": "data/app.db"},
            {"name": "blind", "engine": "sqlite", "path": "data/app.db", "statements": ["write"]},
            {"name": "pg", "engine": "postgresql", "host": "127.0.0.1", "database": "test"},
        ],
        "filesystem": {"read_only_paths": ["data"]},
    }
)


def _database(workspace: Path) -> Path:
    (workspace / "data").mkdir(parents=True, exist_ok=True)
    path = workspace / "data" / "app.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t (a INTEGER)")
        connection.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    return path


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return int(connection.execute("SELECT count(*) FROM t").fetchone()[0])


def test_a_workspace_file_is_backed_up_while_it_is_open(tmp_path: Path) -> None:
    path = _database(tmp_path)
    writer = sqlite3.connect(path)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1000)")  # not committed: not in the copy

    out = run_step(
        "db_backup", context_for(tmp_path, None), source="data/app.db", destination="backups/app.db"
    )
    writer.rollback()
    writer.close()

    assert out["backed_up"] is True and out["format"] == "sqlite"
    assert out["bytes"] == (tmp_path / "backups" / "app.db").stat().st_size
    assert _rows(tmp_path / "backups" / "app.db") == 100


def test_a_granted_database_is_backed_up_by_name(tmp_path: Path) -> None:
    _database(tmp_path)

    out = run_step(
        "db_backup", context_for(tmp_path, GRANTS), database="app", destination="app-backup.db"
    )

    assert out["source"] == "app"
    assert _rows(tmp_path / "app-backup.db") == 100


def test_an_existing_backup_is_replaced_only_when_asked(tmp_path: Path) -> None:
    _database(tmp_path)
    context = context_for(tmp_path, None)
    run_step("db_backup", context, source="data/app.db", destination="copy.db")

    with pytest.raises(StepRunError, match="overwrite"):
        run_step("db_backup", context, source="data/app.db", destination="copy.db")
    run_step("db_backup", context, source="data/app.db", destination="copy.db", overwrite=True)


def test_a_destination_the_policy_protects_is_refused_at_run_time(tmp_path: Path) -> None:
    _database(tmp_path)

    with pytest.raises(PolicyRefusedError, match=r"filesystem.read_only"):
        run_step(
            "db_backup", context_for(tmp_path, GRANTS), database="app", destination="data/copy.db"
        )


def test_a_database_not_granted_for_reading_is_refused_at_run_time(tmp_path: Path) -> None:
    _database(tmp_path)

    with pytest.raises(PolicyRefusedError, match=r"databases.statement"):
        run_step(
            "db_backup", context_for(tmp_path, GRANTS), database="blind", destination="copy.db"
        )
    with pytest.raises(PolicyRefusedError, match=r"databases.name"):
        run_step("db_backup", context_for(tmp_path, None), database="app", destination="copy.db")


def test_a_source_linked_out_of_the_workspace_is_refused(tmp_path: Path) -> None:
    outside = _database(tmp_path / "outside")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    os.symlink(outside, workspace / "stolen.db")

    with pytest.raises(StepRunError, match="not a regular file"):
        run_step(
            "db_backup", context_for(workspace, None), source="stolen.db", destination="copy.db"
        )
    assert not (workspace / "copy.db").exists()


def test_a_destination_outside_the_workspace_is_refused(tmp_path: Path) -> None:
    _database(tmp_path)

    with pytest.raises(StepRunError, match="leaves the mission's workspace"):
        run_step(
            "db_backup",
            context_for(tmp_path, None),
            source="data/app.db",
            destination="../escaped.db",
        )
    assert not (tmp_path.parent / "escaped.db").exists()


def test_a_postgresql_backup_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(StepRunError, match="cannot back up PostgreSQL database 'pg'"):
        run_step("db_backup", context_for(tmp_path, GRANTS), database="pg", destination="pg.dump")
