"""`rustchain run` with a step printing more than the largest event: the output is kept as an
artifact, every event stays small, and status and replay read the history."""

from __future__ import annotations

import re
from pathlib import Path

from rustchain.domain.events.chain import verify_chain
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store
from tests.e2e.test_run import rustchain

LIMIT = 100_000
MISSION = """\
version: "1.0"
name: loud
steps:
  - {id: loud, name: Loud, step_type: command, parameters: {command: printf, args: ["%200000s", x]}}
"""


def test_a_step_printing_more_than_the_event_limit_is_an_artifact_and_the_events_stay_small(
    tmp_path: Path,
) -> None:
    mission = tmp_path / "loud.yaml"
    mission.write_text(MISSION)
    limit = {"RUSTCHAIN_MAX_EVENT_BYTES": str(LIMIT)}

    result = rustchain(tmp_path, "run", str(mission), **limit)

    assert result.returncode == 0, result.stdout + result.stderr
    store = open_event_store(EventStoreSettings(name="executor", home=tmp_path))
    [(tenant, mission_id)] = {
        (n.event.tenant, n.event.mission_id) for n in store.notifications(0, 100)
    }
    events = store.mission_events(tenant, mission_id)
    store.close()
    assert verify_chain(events) is None
    assert max(len(e.to_json().encode()) for e in events) < 10_000
    [succeeded] = [e for e in events if e.type == "StepSucceeded"]
    assert "$artifact" in succeeded.to_json()
    [database] = tmp_path.glob("executor*.sqlite")
    assert database.stat().st_size < 1_000_000  # the 200 kB artifact once, not in every copy
    shown = rustchain(tmp_path, "status", mission_id, **limit)
    replayed = rustchain(tmp_path, "audit", "replay", mission_id, **limit)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"loud\s+│\s+command\s+│\s+succeeded", shown.stdout)
    assert replayed.returncode == 0, replayed.stderr
    assert "output artifact" in replayed.stdout
