"""`rustchain run` on every valid RustChain mission, with network and LLM steps pointed at a
real local test server, in a temporary workspace."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.http_fixtures import LocalServer, json_answer, serve
from tests.paths import COMPAT, DATA, REPO
from tests.unit.test_compatibility import VALID_RUSTCHAIN_MISSIONS

_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]+)?")


@pytest.fixture(scope="module")
def local_api() -> Iterator[LocalServer]:
    """Answers chat completions like a model and every other request with JSON."""

    def answer(method: str, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
        if path.endswith("/chat/completions") or path == "/api/chat":
            messages = (body or {}).get("messages") or [{"content": ""}]
            agent = messages[0].get("role") == "system" and "JSON object" in messages[0]["content"]
            text = (
                json.dumps({"final": "done"})
                if agent
                else f"answer to: {messages[-1]['content'][:40]}"
            )
            if path == "/api/chat":
                return json_answer({"message": {"role": "assistant", "content": text}})
            return json_answer({"choices": [{"message": {"role": "assistant", "content": text}}]})
        status = int(path.rsplit("/", 1)[-1]) if path.startswith("/status/") else 200
        return json_answer({"method": method, "path": path, "received": body}, status)

    yield from serve(answer)


@pytest.mark.parametrize("name", sorted(VALID_RUSTCHAIN_MISSIONS))
def test_rustchain_mission_runs_to_success(
    name: str, local_api: LocalServer, tmp_path: Path
) -> None:
    mission = tmp_path / Path(name).name
    port = local_api.url.rsplit(":", 1)[1]
    text = (COMPAT / name).read_text()
    mission.write_text(_URL.sub(f"http://127.0.0.1:{port}", text))
    policy = tmp_path / "policy.yaml"
    policy.write_text((DATA / "policies" / "compat-runs.yaml").read_text().replace("8080", port))
    env = {
        **os.environ,
        "RUSTCHAIN_HOME": str(tmp_path / "home"),
        "RUSTCHAIN_LLM_URL": f"{local_api.url}/v1",
        "COLUMNS": "200",
    }

    result = subprocess.run(
        [sys.executable, "-m", "rustchain", "run", str(mission), "--policy", str(policy)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=180,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "mission succeeded" in result.stdout
    assert "hash chain whole and untouched" in result.stdout
