"""`make demo`: bring the embedded deployment up, run two missions through it, stop it cleanly.

`rustchain up` starts nats-server and the services as separate processes under .rustchain/demo;
the missions run with `rustchain run` exactly as a user runs them (submitted to the planner,
verified, executed, watched over gRPC); an auditor then replays, re-executes and verifies the
history against JetStream; then RustChain's own examples are validated and planned.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rustchain.bootstrap.stores import open_store
from rustchain.domain.runs.mission_index import MissionIndex
from rustchain.platform.deployment.supervisor import RELAYED_STORES
from rustchain.platform.nats.relay import DEFAULT_READER
from rustchain.platform.storage.event_store import stored_events
from rustchain.platform.storage.mission_files import compile_file
from rustchain.steps import default_registry

ROOT = Path(__file__).resolve().parents[3]
COMPAT = ROOT.parent / "shared" / "compat" / "rustchain-community" / "examples"


RUNS = (
    ("missions/hello.yaml", ("--var", "who=RustChain demo")),
    ("missions/code_analysis.yaml", ()),
)
HOME = ROOT / ".rustchain" / "demo"
# The demo tenant ("default") may analyse this repository: its policy allows that workspace.
TENANT_POLICY = ROOT / "missions" / "policies" / "repository-analysis.yaml"
STARTUP_SECONDS = 90.0
RELAY_SECONDS = 60.0


def _wait_relayed(env: dict[str, str]) -> None:
    """Return once each relay has published every stored event (its tracked position)."""
    deadline = time.monotonic() + RELAY_SECONDS
    for name in RELAYED_STORES:
        store = open_store(name, env)
        try:
            while store.tracked_position(DEFAULT_READER) < store.last_position():
                if time.monotonic() > deadline:
                    raise SystemExit(f"the {name} relay did not catch up in {RELAY_SECONDS:g} s")
                time.sleep(0.1)  # polling interval of a bounded wait on another process's state
        finally:
            store.close()


def _missions_of_this_run(env: dict[str, str]) -> list[str]:
    """The missions RUNS started, in order (the demo's home keeps earlier runs' missions too)."""
    store = open_store("executor", env)
    try:
        index = MissionIndex()
        for event in stored_events(store):
            index.apply(event)
    finally:
        store.close()
    return [entry.mission_id for entry in index.of_tenant("default")[-len(RUNS) :]]


def audit_history(env: dict[str, str], console: Console) -> bool:
    """What an auditor runs: replay, re-execute, and verify the stores against JetStream."""
    _wait_relayed(env)
    missions = _missions_of_this_run(env)
    hello = missions[0]
    verbs: list[tuple[str, ...]] = [("replay", hello), ("reexecute", hello)]
    verbs += [("verify", mission, "--jetstream") for mission in missions]
    ok = True
    for verb in verbs:
        console.rule(f"rustchain audit {' '.join(verb)}")
        command = [sys.executable, "-m", "rustchain", "audit", *verb]
        ok = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode == 0 and ok
    return ok


def _deployment_up(env: dict[str, str], console: Console) -> subprocess.Popen[bytes]:
    """`rustchain up` in the background, once its endpoints are written."""
    endpoints = HOME / "endpoints.json"
    endpoints.unlink(missing_ok=True)
    process = subprocess.Popen([sys.executable, "-m", "rustchain", "up"], cwd=ROOT, env=env)
    deadline = time.monotonic() + STARTUP_SECONDS
    # `rustchain run` waits for each service to be ready; here only the deployment's start.
    while not endpoints.is_file():
        if process.poll() is not None:
            raise SystemExit(f"rustchain up exited with status {process.returncode}")
        if time.monotonic() > deadline:
            process.terminate()
            raise SystemExit("rustchain up did not write its endpoints in time")
        time.sleep(0.1)
    console.print(f"deployment up: endpoints in {endpoints.relative_to(ROOT)}")
    return process


def run_missions(console: Console) -> bool:
    """Run the example missions through the embedded deployment; True when all succeed."""
    (HOME / "policies").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TENANT_POLICY, HOME / "policies" / "default.yaml")
    env = {**os.environ, "RUSTCHAIN_HOME": str(HOME)}
    console.rule("rustchain up")
    deployment = _deployment_up(env, console)
    ok = True
    try:
        for mission, extra in RUNS:
            console.rule(f"rustchain run {mission} {' '.join(extra)}")
            command = [sys.executable, "-m", "rustchain", "run", mission, *extra]
            result = subprocess.run(command, cwd=ROOT, env=env, check=False)
            ok = ok and result.returncode == 0
        ok = audit_history(env, console) and ok
    finally:
        console.rule("stopping the deployment")
        deployment.send_signal(signal.SIGTERM)
        code = deployment.wait(timeout=60)
        console.print(f"deployment stopped (exit status {code})")
        ok = ok and code == 0
    return ok


def main() -> None:
    """Run the example missions, then validate and plan RustChain's examples, and report."""
    console = Console(highlight=False, width=max(Console().width, 140))
    console.print(
        "[bold]RustChain demo[/bold]: the embedded deployment (nats-server and the services) "
        "comes up, two missions run through it end to end (files, commands, memory), each fact "
        "stored in a hash-chained event stream and relayed to JetStream; an auditor replays, "
        "re-executes and verifies that history; the deployment stops; then "
        "RustChain's own examples are validated and planned."
    )
    runs_ok = run_missions(console)
    console.rule("RustChain's examples: validate and plan")
    files = sorted((ROOT / "missions").glob("*.yaml"))
    if COMPAT.is_dir():
        files += sorted(p for p in COMPAT.iterdir() if p.suffix in {".yaml", ".json"})
    registry = default_registry()
    table = Table(title="missions")
    for column in ("file", "result", "steps", "levels", "critical path", "plan hash"):
        table.add_column(column)
    valid = 0
    for path in files:
        shown = f"{path.parent.name}/{path.name}"
        compilation = compile_file(str(path), registry)
        plan = compilation.plan
        if plan is None:
            first = compilation.errors[0] if compilation.errors else None
            where = f"line {first.position.line}: {first.message[:60]}" if first else ""
            table.add_row(shown, "[red]invalid[/red]", "", "", where, "")
            continue
        valid += 1
        table.add_row(
            shown,
            "[green]valid[/green]",
            str(len(plan.steps)),
            str(len(plan.levels)),
            f"{len(plan.critical_path)} steps, {plan.critical_path_seconds:g} s",
            plan.content_hash[:12],
        )
    console.print(table)
    console.print(f"{valid} of {len(files)} missions are valid.")
    own_invalid = [
        p for p in files if p.parent == ROOT / "missions" and not compile_file(str(p), registry).ok
    ]
    sys.exit(0 if runs_ok and not own_invalid else 1)


if __name__ == "__main__":
    main()
