"""Reading histories for auditors: from the services' stores, or from an export folder.

An export is `events.jsonl` (one event's canonical JSON per line, every chain whole from its
start) and `manifest.json` (counts and the head hash of every chain), so that it can be verified
offline with the same checks as the stores.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rustchain.domain.events.envelope import EventEnvelope, decode_event
from rustchain.domain.runs.audit import chains
from rustchain.platform.storage.event_store import (
    EventStoreSettings,
    open_event_store,
    stored_events,
)

AUDITED_STORES = ("executor", "verifier")
EVENTS_FILE = "events.jsonl"
MANIFEST_FILE = "manifest.json"


class ExportError(ValueError):
    """An export folder that cannot be read as one; the message says where."""


def store_events(tenant: str, mission_id: str | None = None) -> list[EventEnvelope]:
    """A tenant's (or one mission's) events from every audited store, each chain in order."""
    events: list[EventEnvelope] = []
    for name in AUDITED_STORES:
        store = open_event_store(EventStoreSettings.from_environ(name))
        try:
            if mission_id is not None:
                events += store.mission_events(tenant, mission_id)
                continue
            events += [e for e in stored_events(store, page=5000) if e.tenant == tenant]
        finally:
            store.close()
    return events


def select_missions(
    events: list[EventEnvelope], since: datetime | None, until: datetime | None
) -> list[EventEnvelope]:
    """Whole missions whose first event falls in [since, until): chains are never cut."""
    started: dict[tuple[str, str], datetime] = {}
    for event in events:
        key = (event.tenant, event.mission_id)
        started[key] = min(started.get(key, event.occurred_at), event.occurred_at)
    kept = {
        key
        for key, at in started.items()
        if (since is None or at >= since) and (until is None or at < until)
    }
    return [e for e in events if (e.tenant, e.mission_id) in kept]


@dataclass(frozen=True)
class ExportSummary:
    """What an export holds."""

    events: int
    missions: int
    chains: int


def write_export(events: list[EventEnvelope], tenant: str, folder: Path) -> ExportSummary:
    """Write events.jsonl and manifest.json into the folder (created if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [event.to_json() for event in events]
    body = ("\n".join(lines) + "\n") if lines else ""
    (folder / EVENTS_FILE).write_text(body, encoding="utf-8")
    grouped = chains(events)
    manifest: dict[str, Any] = {
        "format": 1,
        "tenant": tenant,
        "events": len(events),
        "events_sha256": hashlib.sha256(body.encode("utf-8")).hexdigest(),
        "chains": [
            {
                "tenant": t,
                "mission_id": m,
                "service": s,
                "events": len(chain),
                "head": chain[-1].hash,
            }
            for (t, m, s), chain in sorted(grouped.items())
        ],
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    missions = {(t, m) for t, m, _ in grouped}
    return ExportSummary(len(events), len(missions), len(grouped))


def read_export(folder: Path) -> tuple[list[EventEnvelope], list[str]]:
    """The export's events, and every way it disagrees with its manifest."""
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
        body = (folder / EVENTS_FILE).read_text(encoding="utf-8")
    except (OSError, ValueError) as error:
        raise ExportError(f"{folder}: not a readable export: {error}") from None
    events: list[EventEnvelope] = []
    for number, line in enumerate(body.splitlines(), start=1):
        try:
            events.append(decode_event(json.loads(line)))
        except ValueError as error:
            raise ExportError(f"{folder / EVENTS_FILE}:{number}: not an event: {error}") from None
    problems: list[str] = []
    if manifest.get("events_sha256") != hashlib.sha256(body.encode("utf-8")).hexdigest():
        problems.append(f"{EVENTS_FILE} is not the file that was exported (its SHA-256 differs)")
    if manifest.get("events") != len(events):
        problems.append(
            f"manifest counts {manifest.get('events')} events, the file holds {len(events)}"
        )
    grouped = chains(events)
    for entry in manifest.get("chains", []):
        key = (entry["tenant"], entry["mission_id"], entry["service"])
        chain = grouped.get(key, [])
        if len(chain) != entry["events"] or (chain and chain[-1].hash != entry["head"]):
            problems.append(
                f"chain {'/'.join(key)}: manifest says {entry['events']} events ending in "
                f"{entry['head'][:12]}, the file has {len(chain)}"
                + (f" ending in {chain[-1].hash[:12]}" if chain else "")
            )
    listed = {(e["tenant"], e["mission_id"], e["service"]) for e in manifest.get("chains", [])}
    problems += [
        f"chain {'/'.join(key)} is not in the manifest" for key in grouped if key not in listed
    ]
    return events, problems
