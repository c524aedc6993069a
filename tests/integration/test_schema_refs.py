"""validate_schema resolves `$ref` only inside the schema given: nothing is fetched, from the
network or from files, and a schema that cannot be applied is a clear step error."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from rustchain.steps import default_registry
from rustchain.steps.support.runtime import StepContext, StepRunError

REGISTRY = default_registry(include_plugins=False)


def validate(workspace: Path, **parameters: Any) -> Any:
    """One attempt of a validate_schema step, with no policy (the verifier bypassed)."""
    definition = REGISTRY.types["validate_schema"]
    params = definition.parameters.model_validate(parameters)
    context = StepContext("acme", "m1", "s1", workspace, 10)
    return asyncio.run(definition.run(params, context))  # type: ignore[attr-defined]


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server that serves a schema and records every request it receives."""
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            body = json.dumps({"type": "string"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()
    thread.join()


def test_an_http_ref_is_refused_and_nothing_is_requested(
    tmp_path: Path, listener: tuple[str, list[str]]
) -> None:
    base, requests = listener
    schema = {"properties": {"name": {"$ref": f"{base}/name.json"}}}

    with pytest.raises(StepRunError, match=rf"\$ref '{base}/name\.json' is refused"):
        validate(tmp_path, schema=schema, data={"name": 5})
    # The server is only shut down after the step returned: a request would be recorded by now.
    assert requests == []


def test_a_relative_ref_under_an_http_id_is_refused_and_nothing_is_requested(
    tmp_path: Path, listener: tuple[str, list[str]]
) -> None:
    base, requests = listener
    schema = {"$id": f"{base}/root.json", "$ref": "name.json"}

    with pytest.raises(StepRunError, match=r"\$ref 'name\.json' is refused"):
        validate(tmp_path, schema=schema, data=5)
    assert requests == []


def test_a_file_ref_is_refused_and_the_file_is_not_shown(tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"enum": ["TOP-SECRET-VALUE"]}))
    workspace = tmp_path / "ws"
    workspace.mkdir()

    with pytest.raises(StepRunError, match=r"\$ref 'file://.*secret\.json' is refused") as refused:
        validate(workspace, schema={"$ref": secret.as_uri()}, data="guess")
    assert "TOP-SECRET-VALUE" not in str(refused.value)


def test_refs_inside_the_schema_still_resolve(tmp_path: Path) -> None:
    schema = {
        "definitions": {"name": {"type": "string", "minLength": 2}},
        "$defs": {"id": {"$id": "id.json", "type": "integer"}},
        "properties": {"name": {"$ref": "#/definitions/name"}, "id": {"$ref": "id.json"}},
    }

    assert validate(tmp_path, schema=schema, data={"name": "ok", "id": 3}) == {"valid": True}
    with pytest.raises(StepRunError, match="name: 'x' is too short"):
        validate(tmp_path, schema=schema, data={"name": "x", "id": 3})


def test_a_schema_file_comes_through_the_workspace(tmp_path: Path) -> None:
    (tmp_path / "schema.json").write_text(json.dumps({"type": "integer"}))

    assert validate(tmp_path, schema_path="schema.json", data=1) == {"valid": True}
    with pytest.raises(StepRunError, match=r"schema_path 'missing\.json' is not a file"):
        validate(tmp_path, schema_path="missing.json", data=1)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"$ref": "#/foo", "foo": "text"}, "leads to a value that is not a schema"),
        ({"$ref": "#/foo", "foo": [1]}, "leads to a value that is not a schema"),
        ({"$ref": "#/nowhere"}, r"\$ref '#/nowhere' does not resolve within the schema"),
        ({"$ref": "#"}, "refers to itself without end"),
        ({"properties": "x"}, "the schema is not valid: 'x' is not of type 'object'"),
        ({"$schema": 5}, "the schema is not valid"),
        ({"$ref": "#/foo", "foo": {"type": "nope"}}, "the schema is not valid: Unknown type"),
    ],
)
def test_a_malformed_schema_is_a_clear_step_error(
    tmp_path: Path, schema: dict[str, Any], message: str
) -> None:
    with pytest.raises(StepRunError, match=message):
        validate(tmp_path, schema=schema, data={"a": 1})


def test_a_schema_file_that_is_not_an_object_is_a_clear_step_error(tmp_path: Path) -> None:
    (tmp_path / "schema.json").write_text('"just text"')

    with pytest.raises(StepRunError, match="a JSON Schema is an object or a boolean, not str"):
        validate(tmp_path, schema_path="schema.json", data=1)
