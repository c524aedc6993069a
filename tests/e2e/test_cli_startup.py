"""The command line starts fast: `--version` and `validate` load no gRPC, NATS or solver."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rustchain.steps import STEP_MODULES
from tests.paths import REPO

HEAVY = ("grpc", "nats", "z3")
# What step types use when they run; validating or planning a mission must not load them.
STEP_LIBRARIES = (
    *("httpx", "httpcore", "jsonschema", "asyncssh", "websockets", "psutil", "tree_sitter"),
    *("defusedxml", "redis", "sqlglot", "psycopg", "sqlite_vec", "sqlean", "opentelemetry"),
    "asyncio",  # the subprocess machinery a program-running step needs only to run
)
# Invoke the console script's entry point, then list what it imported.
PROBE = """
import json, sys
sys.argv = ["rustchain", *json.loads(sys.argv[1])]
from rustchain.cli import main
try:
    main()
except SystemExit:
    pass
sys.stderr.write(json.dumps(sorted(sys.modules)))
"""


def _modules_after(*args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    return set(json.loads(result.stderr.splitlines()[-1]))


@pytest.mark.parametrize(
    "args", [("--version",), ("validate", "missions/hello.yaml"), ("plan", "missions/hello.yaml")]
)
def test_a_light_verb_loads_no_grpc_nats_or_solver(args: tuple[str, ...]) -> None:
    modules = _modules_after(*args)

    assert "rustchain.domain.plans.compiler" in modules or args == ("--version",)
    loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert loaded == [], f"rustchain {' '.join(args)} imported {loaded[:5]}"


@pytest.mark.parametrize("args", [("validate", "missions/hello.yaml")])
def test_validating_loads_no_library_a_step_type_runs_with(args: tuple[str, ...]) -> None:
    modules = _modules_after(*args)

    loaded = sorted({m.split(".")[0] for m in modules} & set(STEP_LIBRARIES))
    assert loaded == [], f"rustchain {' '.join(args)} imported {loaded}"


@pytest.mark.parametrize("verb", ["validate", "plan"])
def test_compiling_a_mission_loads_only_the_step_modules_it_uses(verb: str) -> None:
    modules = _modules_after(verb, "missions/hello.yaml")

    loaded = sorted(name for name, module in STEP_MODULES.items() if module in modules)
    assert loaded == ["command", "create_file", "read_file"]


def test_version_imports_no_verb_module() -> None:
    modules = _modules_after("--version")

    verbs = sorted(m for m in modules if m.startswith("rustchain.cli."))
    assert verbs == ["rustchain.cli.app", "rustchain.cli.exit_codes"]


def test_every_verb_is_listed_and_its_module_loads() -> None:
    from click.testing import CliRunner

    from rustchain.cli.app import VERBS, app

    listed = CliRunner().invoke(app, ["--help"])
    for verb in VERBS:
        assert CliRunner().invoke(app, [verb, "--help"]).exit_code == 0, verb
        assert f"  {verb} " in listed.output


def test_the_shared_helpers_load_no_grpc_nats_or_solver() -> None:
    probe = "import sys, rustchain.cli.common; print(' '.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )

    loaded = [m for m in result.stdout.split() if m.split(".")[0] in HEAVY]
    assert loaded == []
