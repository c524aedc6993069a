"""Runners turn OS limits and bad values into StepRunErrors naming the parameter: whatever text
a mission puts in a parameter, no raw Python error reaches the user."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rustchain.steps import default_registry
from rustchain.steps.support.runtime import StepContext, StepRunError, parameters_of

REGISTRY = default_registry(include_plugins=False)


def run(step_type: str, workspace: Path, **parameters: Any) -> Any:
    """One attempt of a step with no policy (the verifier bypassed), parameters validated as
    the executor validates them."""
    definition = REGISTRY.types[step_type]
    params = parameters_of(definition.parameters, parameters)
    context = StepContext("acme", "m1", "s1", workspace, 10)
    return asyncio.run(definition.run(params, context))  # type: ignore[attr-defined]


# Text a mission can write in JSON: NUL, lone surrogates, separators, `..`, overlong names.
hostile_text = st.one_of(
    st.text(min_size=1, max_size=40),
    st.lists(st.sampled_from(["a", "/", ".", "..", "\x00", "\ud800", "\n"]), min_size=1).map(
        "".join
    ),
    st.builds(lambda n, s: s * n, st.integers(1, 400), st.sampled_from(["n", "d/", "../"])),
)
FILE_STEPS = [
    ("create_file", "path", {"content": "x"}),
    ("edit_file", "path", {"content": "x"}),
    ("delete_file", "path", {"missing_ok": True}),
    ("read_file", "path", {}),
    ("list_directory", "path", {}),
    ("file_search", "path", {}),
    ("file_search", "pattern", {}),
    ("parse_yaml", "path", {}),
    ("copy_file", "destination", {"source": "a.txt"}),
    ("move_file", "source", {"destination": "b.txt"}),
    ("validate_schema", "schema_path", {"data": 1}),
    ("parse_xml", "path", {}),
    ("csv_process", "path", {}),
    ("compress", "source", {"destination": "a.tar"}),
    ("compress", "destination", {"source": "."}),
    ("extract_functions", "path", {}),
    ("generate_docs", "output", {"content": "def f(): pass", "language": "python"}),
    ("git_status", "path", {}),
    ("compile_code", "path", {"language": "python"}),
]


@pytest.mark.parametrize(("step_type", "parameter", "others"), FILE_STEPS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(written=hostile_text)
def test_any_text_as_a_path_ends_in_a_result_or_a_step_error(
    step_type: str, parameter: str, others: dict[str, Any], written: str
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        workspace = Path(folder)
        (workspace / "a.txt").write_text("A")
        with contextlib.suppress(StepRunError):
            run(step_type, workspace, **{parameter: written, **others})


def test_create_file_refuses_setuid_and_setgid_permissions(tmp_path: Path) -> None:
    with pytest.raises(StepRunError, match=r"^permissions '4755' may not set the setuid"):
        run("create_file", tmp_path, path="run.sh", content="#!/bin/sh\n", permissions="4755")
    assert not (tmp_path / "run.sh").exists()


def test_deeply_nested_json_is_a_step_error(tmp_path: Path) -> None:
    nested = "[" * 100_000 + "]" * 100_000

    with pytest.raises(StepRunError, match=r"^content is not JSON"):
        run("validate_schema", tmp_path, schema={"type": "array"}, content=nested)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"url": "http://[::1"}, r"^url 'http://\[::1' is not a valid URL"),
        ({"url": "http://127.0.0.1:99999/"}, r"^url .* has port 99999, outside 1-65535"),
        ({"url": "http://127.0.0.1:1/", "headers": {"x-a": "b\r\nx-b: c"}}, r"^headers\.'x-a'"),
        ({"url": "http://127.0.0.1:1/", "headers": {"x-\x00": "b"}}, r"^headers\.'x-\\x00'"),
        ({"url": "http://127.0.0.1:1/", "headers": {"x-a": "é"}}, r"^headers\.'x-a'"),
    ],
)
def test_http_values_the_client_cannot_send_are_step_errors_naming_the_parameter(
    tmp_path: Path, parameters: dict[str, Any], message: str
) -> None:
    with pytest.raises(StepRunError, match=message):
        run("http", tmp_path, **parameters)


def test_a_memory_service_refusal_is_a_one_line_step_error(tmp_path: Path) -> None:
    from rustchain.platform.grpc.memory_client import GrpcMemoryClient
    from tests.integration.grpc_helpers import running_services

    async def scenario() -> str:
        async with running_services(tmp_path) as services:
            client = GrpcMemoryClient(
                services.channel("memory"), services.endpoints["memory"], "acme"
            )
            with pytest.raises(StepRunError) as refused:
                await client.add("notes\x01", "text", None, {})
            return str(refused.value)

    message = asyncio.run(scenario())

    assert message.startswith("the memory service refused the request: collection must not")
    assert "\n" not in message
    assert "RpcError" not in message
