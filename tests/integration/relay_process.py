"""A relay in a process of its own, for the kill tests: relays everything, prints its stats."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from pathlib import Path

from rustchain.platform.nats.relay import JetStreamRelay, RelaySettings
from rustchain.platform.storage.event_store import EventStoreSettings, open_event_store


async def _relay(settings: EventStoreSettings, url: str, batch_size: int) -> dict[str, int]:
    store = open_event_store(settings)
    try:
        relay = JetStreamRelay(store, url, RelaySettings(batch_size=batch_size))
        await relay.catch_up(timeout=120)
        return json.loads(json.dumps(dataclasses.asdict(relay.stats), default=str))
    finally:
        store.close()


def main() -> None:
    """Relay the store under --home to --url until it is caught up."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--database-url")
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
    settings = EventStoreSettings(args.name, args.home, database_url=args.database_url)
    stats = asyncio.run(_relay(settings, args.url, args.batch_size))
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main()
