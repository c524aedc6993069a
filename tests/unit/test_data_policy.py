"""The data-service policy sections (databases, redis, embeddings): deny unless granted, grants
checked when the policy is read, and an unsafe mission for every rule and step type."""

from __future__ import annotations

import pytest

from rustchain.domain.language.diagnostics import DiagnosticSink
from rustchain.domain.policy.checks import check_value
from rustchain.domain.policy.model import Policy, parse_policy
from rustchain.domain.policy.rules import Sink
from rustchain.steps.support.sql_statements import possible_kinds
from tests.unit.verifier_helpers import VERIFIER_DATA, expectation, plan_of

UNSAFE = sorted((VERIFIER_DATA / "unsafe").glob("*.yaml"))


def test_every_data_rule_and_step_type_has_an_unsafe_mission() -> None:
    rules, step_types = set(), set()
    for path in UNSAFE:
        found = expectation(path)
        rules.add(found.rule)
        if found.step is not None:
            step_types.add(plan_of(path).step(found.step).step_type)

    assert rules >= {
        *("databases.name", "databases.statement", "redis.server", "redis.key", "redis.write"),
        "embeddings.model",
    }
    assert step_types >= {
        *("sql_query", "db_backup", "db_migrate", "redis_get", "redis_set"),
        *("generate_embedding", "similarity_search", "model_inference"),
    }


@pytest.mark.parametrize(
    ("sink", "value"),
    [
        (Sink.DATABASE, "reports"),
        (Sink.SQL_STATEMENT, "reports/read"),
        (Sink.REDIS_SERVER, "default"),
        (Sink.REDIS_KEY, "default/anything"),
        (Sink.REDIS_WRITE, "default"),
        (Sink.EMBEDDING_MODEL, "text-embedding-ada-002"),
    ],
)
def test_the_default_policy_grants_no_data_service(sink: Sink, value: str) -> None:
    assert check_value(Policy(), sink, value) is not None


def test_statement_kinds_are_checked_per_database_as_a_whole() -> None:
    policy = Policy.model_validate(
        {
            "databases": [
                {"name": "a", "engine": "sqlite", "path": "a.db", "statements": ["read", "write"]},
                {
                    "name": "b",
                    "engine": "sqlite",
                    "path": "b.db",
                    "statements": ["read", "write", "schema", "other"],
                },
            ]
        }
    )

    assert check_value(policy, Sink.SQL_STATEMENT, "a/read+write") is None
    assert check_value(policy, Sink.SQL_STATEMENT, "a/read+schema") is not None
    assert check_value(policy, Sink.SQL_STATEMENT, "a/any") is not None
    assert check_value(policy, Sink.SQL_STATEMENT, "b/any") is None
    assert check_value(policy, Sink.SQL_STATEMENT, "c/read") is not None


def test_a_query_built_from_references_may_be_any_kind() -> None:
    assert possible_kinds("SELECT * FROM t WHERE {filter}") == ["any"]
    assert possible_kinds("SELECT * FROM t WHERE a = %s") == ["read"]
    assert possible_kinds("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d") == ["write"]
    assert possible_kinds("ATTACH DATABASE '/etc/x' AS y") == ["other"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("databases: [{name: a, engine: sqlite}]", "give its 'path'"),
        ("databases: [{name: a, engine: postgresql, host: db}]", "give its 'host' and 'database'"),
        ("databases: [{name: a/b, engine: sqlite, path: x.db}]", "name"),
        ("databases: [{name: a, engine: sqlite, path: x.db, statements: [drop]}]", "statements"),
        ("redis: {servers: [{name: c, host: h, password: hunter2}]}", "password"),
        ("embeddings: {endpoint: ftp://x}", "endpoint"),
    ],
)
def test_a_bad_grant_is_an_error_where_it_is_written(text: str, message: str) -> None:
    sink = DiagnosticSink("policy.yaml")

    assert parse_policy(text.encode(), "policy.yaml", sink) is None
    rendered = " ".join(d.render() for d in sink.sorted())
    assert "policy.yaml:1:" in rendered and message in rendered
