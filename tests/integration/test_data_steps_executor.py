"""The data steps run by the executor: a PostgreSQL connection and a Redis URL come from the
tenant's secrets, reach the runners, and appear in no event; the tenant's policy is re-checked."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from rustchain.bootstrap.executor import build_executor
from rustchain.domain.policy.model import Policy
from rustchain.domain.runs.mission_run import StepStatus
from rustchain.executor.application import ExecutorApplication
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from rustchain.platform.storage.secret_store import FileSecretStore
from rustchain.steps import default_registry
from tests.integration.conftest import postgres_url
from tests.unit.compile_helpers import plan_of

TENANT = "acme"
PASSWORD = "pw-5e1c9d7a2b"


@pytest.fixture
def executor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ExecutorApplication]:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("RUSTCHAIN_HOME", str(home))
    monkeypatch.delenv("RUSTCHAIN_SECRETS_DIR", raising=False)
    secrets = FileSecretStore.from_environ()
    # The machine's servers trust loopback: the password is carried, not needed.
    secrets.set(TENANT, "REPORTS_DB", f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/test")
    secrets.set(TENANT, "CACHE_URL", f"redis://:{PASSWORD}@127.0.0.1:6379/0")
    store = open_event_store(EventStoreSettings(name="executor", home=home))
    yield build_executor(
        os.environ,
        store,
        registry=default_registry(include_plugins=False),
        policy_for=None,  # each test sets the tenant's grants it needs
        secrets=secrets,
    )
    store.close()


@pytest.mark.postgres
def test_credentials_from_secrets_reach_the_runners_and_no_event(
    executor: ExecutorApplication,
) -> None:
    postgres_url()
    prefix = f"rustchain-test:{uuid.uuid4().hex[:12]}:"
    executor.policy_for = lambda tenant: Policy.model_validate(
        {
            "databases": [
                {
                    "name": "reports",
                    "engine": "postgresql",
                    "host": "127.0.0.1",
                    "database": "test",
                },
            ],
            "redis": {
                "servers": [
                    {
                        "name": "default",
                        "host": "127.0.0.1",
                        "key_prefixes": [prefix],
                        "write": True,
                    }
                ]
            },
        }
    )
    mission = f"""\
version: "1.0"
name: data-steps
config: {{fail_fast: false}}
steps:
  - id: count
    step_type: sql_query
    parameters:
      database: reports
      connection: "{{secrets.REPORTS_DB}}"
      query: "SELECT %s::int * 2 AS doubled"
      params: [21]
  - id: remember
    step_type: redis_set
    depends_on: [count]
    parameters:
      key: "{prefix}doubled"
      value: "doubled={{count.rows}}"
      redis_url: "{{secrets.CACHE_URL}}"
  - id: recall
    step_type: redis_get
    depends_on: [remember]
    parameters: {{key: "{prefix}doubled", redis_url: "{{secrets.CACHE_URL}}"}}
  - id: purge
    step_type: sql_query
    parameters:
      database: reports
      connection: "{{secrets.REPORTS_DB}}"
      query: "DELETE FROM rustchain_no_such_table"
"""
    try:
        mission_id = executor.start(TENANT, plan_of(mission), {})
        asyncio.run(executor.drive(TENANT, mission_id))
    finally:
        redis.Redis(host="127.0.0.1", port=6379).delete(f"{prefix}doubled")

    steps = executor.load(TENANT, mission_id).steps
    assert steps["count"].output["rows"] == [[42]], steps
    assert steps["remember"].status is StepStatus.SUCCEEDED, steps["remember"].error
    assert steps["recall"].output == {
        "key": f"{prefix}doubled",
        "value": "doubled=[[42]]",
        "exists": True,
    }
    # The grant allows reads only: the runner refuses the DELETE, whatever no verifier saw.
    assert steps["purge"].status is StepStatus.FAILED
    assert "databases.statement" in (steps["purge"].error or "")
    events = executor.store.mission_events(TENANT, mission_id)
    assert all(PASSWORD not in json.dumps(e.payload) for e in events)
