"""`rustchain run` as a user runs it: progress, outcome, exit code, and the recorded history."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from rustchain.domain.events.chain import verify_chain
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from tests.paths import REPO


def rustchain(home: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run the command with its state in `home`."""
    env = {**os.environ, "RUSTCHAIN_HOME": str(home), "COLUMNS": "200", **extra_env}
    return subprocess.run(
        [sys.executable, "-m", "rustchain", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=False,
    )


def test_run_hello_succeeds_and_records_a_whole_history(tmp_path: Path) -> None:
    result = rustchain(tmp_path, "run", "missions/hello.yaml", "--var", "who=Ada")

    assert result.returncode == 0, result.stderr
    assert "mission succeeded" in result.stdout
    assert "output greeting: Hello, Ada!" in result.stdout
    store = open_event_store(EventStoreSettings(name="executor", home=tmp_path))
    [(tenant, mission)] = {
        (n.event.tenant, n.event.mission_id) for n in store.notifications(0, 100)
    }
    events = store.mission_events(tenant, mission)
    store.close()
    assert tenant == "default"
    assert verify_chain(events) is None
    assert [e.type for e in events] == [
        "MissionStarted",
        "StepStarted",
        "StepSucceeded",
        "StepStarted",
        "StepSucceeded",
        "StepStarted",
        "StepSucceeded",
        "MissionFinished",
    ]
    workspace = tmp_path / "workspaces" / "default" / mission
    assert (workspace / "hello.txt").read_text().startswith("Hello, Ada!")


def test_a_failing_mission_exits_one_and_says_which_step(tmp_path: Path) -> None:
    mission = tmp_path / "failing.yaml"
    mission.write_text(
        'version: "1.0"\nname: failing\nsteps:\n'
        "  - {id: broken, name: Broken, step_type: command, parameters: {command: 'false'}}\n"
        "  - {id: after, name: After, step_type: noop, depends_on: [broken]}\n"
    )

    result = rustchain(tmp_path, "run", str(mission))

    assert result.returncode == 1
    assert "failed broken: 'false' exited with status 1" in result.stdout
    assert "skipped after: fail_fast: step 'broken' failed" in result.stdout
    assert "mission failed" in result.stdout


def test_variables_are_checked_before_anything_runs(tmp_path: Path) -> None:
    result = rustchain(
        tmp_path, "run", "missions/hello.yaml", "--var", "who=R2-D2!", "--var", "x=1"
    )

    assert result.returncode == 1
    assert "the mission has no variable 'x'" in result.stderr
    assert "variable 'who' must match ^[A-Za-z ]{1,40}$, found 'R2-D2!'" in result.stderr
    assert not (tmp_path / "workspaces").exists()


def test_a_malformed_var_is_a_usage_error(tmp_path: Path) -> None:
    result = rustchain(tmp_path, "run", "missions/hello.yaml", "--var", "who")

    assert result.returncode == 2
    assert "expected NAME=VALUE" in result.stderr


def test_a_mission_the_verifier_refuses_runs_nothing(tmp_path: Path) -> None:
    mission = tmp_path / "escape.yaml"
    mission.write_text(
        'version: "1.0"\nname: escape\nvariables: {dir: {type: string}}\nsteps:\n'
        "  - id: write\n    name: Write\n    step_type: create_file\n"
        "    parameters: {path: '{dir}/x.txt', content: hi}\n"
    )

    result = rustchain(tmp_path, "run", str(mission), "--var", "dir=reports")

    assert result.returncode == 1
    assert f"{mission}:5:5: error: [filesystem.workspace] step 'write'" in result.stderr
    assert f"{mission}: refused: nothing was run" in result.stderr
    assert not (tmp_path / "workspaces").exists()


def test_missions_status_and_cancel_read_the_recorded_history(tmp_path: Path) -> None:
    assert rustchain(tmp_path, "run", "missions/hello.yaml").returncode == 0

    listed = rustchain(tmp_path, "missions")
    [mission] = re.findall(r"[0-9a-f]{32}", listed.stdout)
    shown = rustchain(tmp_path, "status", mission)
    cancelled = rustchain(tmp_path, "cancel", mission)
    missing = rustchain(tmp_path, "status", "0" * 32)

    assert "hello" in listed.stdout and "succeeded" in listed.stdout
    assert shown.returncode == 0
    assert re.search(r"say_it\s+│\s+command\s+│\s+succeeded\s+│\s+1", shown.stdout)
    assert "executor: this executor (one executor drives an SQLite store)" in shown.stdout
    assert cancelled.returncode == 1
    assert "had already finished or been cancelled" in cancelled.stderr
    assert missing.returncode == 1
    assert f"no mission '{'0' * 32}' for tenant 'default'" in missing.stderr


def test_the_tenants_policy_file_in_the_home_applies(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "acme.yaml").write_text(
        "name: acme-strict\ncommands:\n  allowed_programs: [cat]\n"
    )

    strict = rustchain(tmp_path, "run", "missions/hello.yaml", "--tenant", "acme")
    default = rustchain(tmp_path, "run", "missions/hello.yaml", "--tenant", "other")

    assert strict.returncode == 1
    assert "[command.program] step 'say_it'" in strict.stderr
    assert "violation under policy 'acme-strict'" in strict.stderr
    assert default.returncode == 0, default.stderr


def test_an_unreachable_database_is_one_line_naming_it_without_the_password(tmp_path: Path) -> None:
    result = rustchain(
        tmp_path,
        "run",
        "missions/hello.yaml",
        RUSTCHAIN_DATABASE_URL="postgresql://auditor:s3cret@127.0.0.1:1/events",
    )

    assert result.returncode == 3
    assert result.stderr.startswith(
        "rustchain: event store unreachable: PostgreSQL at 127.0.0.1:1/events"
    )
    assert "s3cret" not in result.stderr
    assert "Traceback" not in result.stderr
