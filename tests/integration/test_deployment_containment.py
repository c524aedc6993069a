"""On a real `rustchain up`, a tenant whose operator allowed a shell cannot become admin.

Issue 11's worst attack: tenant beta read the deployment's key and admin token from a step, signed
an admin token and listed tenant alpha's missions. Here beta's policy lets it run `sh` with any
argument (an operator's mistake the verifier accepts: `sh` is listed as an unmodelled program),
so the mission is proven SAFE and runs; the sandbox alone keeps the home and alpha's workspace
out of reach, and nothing of them reaches beta's events.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conditions import wait_until_sync

UP_TIMEOUT_SECONDS = 60.0
RUN_TIMEOUT_SECONDS = 120.0
ALPHA_NOTES = "alpha-private-notes-6d1e"
CARELESS_POLICY = """\
commands:
  allowed_programs: [sh]
  unmodelled_programs: [sh]
  denied_arguments: []
"""


def _environ(home: Path) -> dict[str, str]:
    """This process's environment for the deployment in `home`, none of another one's settings."""
    environ = {**os.environ, "RUSTCHAIN_HOME": str(home)}
    for name in ("RUSTCHAIN_ENDPOINT", "NATS_URL", "RUSTCHAIN_TOKEN"):
        environ.pop(name, None)
    return environ


def _cli(home: Path, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    environ = _environ(home)
    if token is not None:
        environ["RUSTCHAIN_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "rustchain", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("deployment")
    home = root / "home"
    (home / "policies").mkdir(parents=True)
    (home / "policies" / "beta.yaml").write_text(CARELESS_POLICY)
    alpha = home / "workspaces" / "alpha" / "earlier-mission"
    alpha.mkdir(parents=True)
    (alpha / "notes.txt").write_text(ALPHA_NOTES)
    environ = _environ(home)
    with (root / "up.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rustchain", "up"], env=environ, stdout=log, stderr=log
        )
        try:
            wait_until_sync((home / "endpoints.json").is_file, UP_TIMEOUT_SECONDS, "endpoints")
            yield home
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(UP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _secrets(home: Path) -> list[str]:
    """Every secret of the home a step must not see: key material, tokens, alpha's notes."""
    found = [ALPHA_NOTES, (home / "admin.token").read_text().strip()]
    for pem in sorted((home / "keys").glob("*.pem")):
        body = [line for line in pem.read_text().splitlines() if not line.startswith("-----")]
        found.append("".join(body))
    return found


def test_a_tenant_with_a_shell_reads_no_key_token_or_other_tenant(
    home: Path, tmp_path: Path
) -> None:
    beta = _cli(home, "token", "create", "--role", "tenant", "--tenant", "beta")
    assert beta.returncode == 0, beta.stderr
    script = (
        f"cat {home}/keys/*.pem {home}/admin.token {home}/*.sqlite3;"
        f" cat {home}/workspaces/alpha/*/notes.txt; cat ../../alpha/*/notes.txt;"
        f" for pid in /proc/[0-9]*; do cat $pid/environ; done; ls -la {home} /; true"
    )
    mission = tmp_path / "attack.yaml"
    mission.write_text(
        "version: '1.0'\nname: attack\nsteps:\n"
        "  - id: attack\n    step_type: command\n"
        f"    parameters: {{command: sh, args: ['-c', {script!r}]}}\n"
    )

    ran = _cli(home, "run", "--tenant", "beta", str(mission), token=beta.stdout.strip())
    events = _cli(home, "events", "--tenant", "beta")

    # Proven SAFE under the careless policy, so it ran: what stopped it is the sandbox.
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert events.returncode == 0, events.stderr
    assert "StepSucceeded" in events.stdout
    for secret in _secrets(home):
        assert secret not in ran.stdout + ran.stderr
        assert secret not in events.stdout
    # With no readable key, beta's only token is its own: alpha stays closed to it. The command
    # line refuses before sending; the services refuse the same call on their own
    # (test_grpc_auth: another tenant's token is PERMISSION_DENIED on every method).
    listed = _cli(home, "missions", "--tenant", "alpha", token=beta.stdout.strip())
    assert listed.returncode == 2
    assert "is not the token's tenant (beta)" in listed.stderr
